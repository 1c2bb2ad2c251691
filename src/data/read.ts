/**
 * Parsing shared by the data set readers (through their DataFs): every failure becomes a
 * UserError that names the file (and, for JSON Lines, the line).
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';

export function readJson(fs: DataFs, path: string): unknown {
  const text = fs.readText(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * JSON Lines: one JSON value per line, blank lines skipped.
 * Returns `[lineNumber (1-based), value]` pairs.
 */
export function readJsonLines(fs: DataFs, path: string): [number, unknown][] {
  const out: [number, unknown][] = [];
  fs.readText(path)
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        out.push([i + 1, JSON.parse(line)]);
      } catch (e) {
        throw new UserError(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
      }
    });
  return out;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Names a JSON value's type for error messages: `an array`, `a number`, `null`, ... */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
