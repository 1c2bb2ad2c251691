/** The real CLI as a user runs it (a child process), and what a refusal must look like. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

export const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');

export interface CliResult {
  code: number | null;
  err: string;
  out: string;
}

export function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, err: r.stderr, out: r.stdout };
}

/** A user mistake: exit 2, the reason, no stack trace, refused before any weight loads. */
export function refused(r: CliResult, msg: RegExp): void {
  expect(r.err).toMatch(msg);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.err).not.toMatch(/loading weights/);
  expect(r.code).toBe(2);
}
