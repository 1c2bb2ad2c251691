/**
 * Starts the longest test files first, so the two workers finish together instead of one
 * idling while the other runs a long file picked last. Durations come from the last local
 * run (test/.cache/durations.json, written by test/run.mjs) or else from the committed
 * test/durations.json (a fresh clone); files in neither run first (new, so likely long-ish
 * and worth hearing about early).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

function durations(root: string): Record<string, number> {
  const read = (p: string) => (existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, number>) : {});
  return { ...read(join(root, 'test/durations.json')), ...read(join(root, 'test/.cache/durations.json')) };
}

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const known = durations(root);
    const ms = (f: TestSpecification) => known[relative(root, f.moduleId)] ?? Infinity;
    return [...files].sort((a, b) => ms(b) - ms(a));
  }
}
