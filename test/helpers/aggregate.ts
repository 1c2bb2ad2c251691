/** Comparing the aggregates of runs over the same items (sharded vs one process). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/** The options that say how a run was cut into parts; they differ between such runs by design. */
const PARTITION = ['limit', 'seed', 'shard'];

/** The largest difference over every number of two aggregates, paired; everything else must be equal. */
export function maxDiff(a: unknown, b: unknown, path = ''): number {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b);
  if (Array.isArray(a) && Array.isArray(b)) {
    expect(a.length, path).toBe(b.length);
    return Math.max(0, ...a.map((x, i) => maxDiff(x, b[i], `${path}[${i}]`)));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a).filter((k) => !PARTITION.includes(k));
    expect(keys.sort(), path).toEqual(Object.keys(b).filter((k) => !PARTITION.includes(k)).sort());
    return Math.max(0, ...keys.map((k) => maxDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)));
  }
  expect(a, path).toEqual(b);
  return 0;
}

export const readAggregate = (dir: string) => JSON.parse(readFileSync(join(dir, 'aggregate.json'), 'utf8'));
