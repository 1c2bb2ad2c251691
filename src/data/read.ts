/**
 * File reading shared by the data set loaders: every failure becomes a UserError that
 * names the file (and, for JSON Lines, the line).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';

/** The text of a file (UTF-8, a leading BOM dropped). */
export function readText(path: string): string {
  let text: string;
  try {
    if (statSync(path).isDirectory()) throw new UserError(`${path}: is a directory, not a file`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export function readJson(path: string): unknown {
  const text = readText(path);
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
export function readJsonLines(path: string): [number, unknown][] {
  const out: [number, unknown][] = [];
  readText(path)
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

/** The names in a directory (UserError if it is not one). */
export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UserError(`${dir}: not a directory`);
    throw new UserError(`${dir}: cannot list (${code ?? (e as Error).message})`);
  }
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
