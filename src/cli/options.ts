/** Parsing of numeric flags shared by the commands: a clear message for a bad value. */
import { UserError } from '../errors.ts';

export function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
}

export function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UserError(`${name} must be a number, got ${v}`);
  return n;
}

/** commander's collector for a repeatable option. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}
