/**
 * `npm run bench -- --quick` over every group (but chameleon, which --quick runs only when
 * named: ~30 s, over this test's budget), so the suite cannot rot: the real bench
 * (bench/main.ts) on lavapipe, with its real baselines (OpenBLAS, torch, HF transformers in
 * the .ci/hf-venv.sh venv, the CLI for shards). Tiny shapes: nothing here is a measurement;
 * the test checks that every case runs, that each side gave a time or rate, that each ratio
 * is ours / baseline, and that the comparisons with transformers say what they are.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchRecord } from '../../bench/record.ts';

const ROOT = join(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-quick-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const FAMILY_CASES = ['load-vs-hf', 'prefill-vs-hf', 'decode-vs-hf', 'analyze-vs-hf', 'analyze-overhead'];
const EXPECTED = [
  'matmul',
  'attention',
  ...['llava', 'instructblip', 'llava_next'].flatMap((f) => FAMILY_CASES.map((c) => `${f}-${c}`)),
  ...['', 'llava_next-'].flatMap((p) => [`${p}knockout-sweep-vs-naive`, `${p}knockout-sweep-vs-hf`]),
  'shards-merge-overhead',
  'shards-extra-startups',
  'safetensors-stream',
  'load-rss',
  'host-overhead-dispatch',
  'host-overhead-llava-decode',
  'host-overhead-instructblip-decode',
];

describe('npm run bench -- --quick', () => {
  // 78 s at load average 2–8 on 2 cores; at load 18 (other runs sharing the machine) 12 min
  it('runs every group and prints the HF comparisons with their settings', { timeout: 1_500_000 }, () => {
    const json = join(work, 'records.json');
    const r = spawnSync(process.execPath, [join(ROOT, 'src/cli/run-ts.mjs'), join(ROOT, 'bench/main.ts'), '--quick', '--json', json], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? work },
    });
    expect(r.status, `bench failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(r.stderr).not.toMatch(/FAILED/);
    const records = JSON.parse(readFileSync(json, 'utf8')) as BenchRecord[];
    const cases = new Set(records.map((x) => x.case));
    expect([...EXPECTED].filter((c) => !cases.has(c))).toEqual([]);
    for (const x of records) {
      expect(Number.isFinite(x.ours) && x.ours > 0, `${x.case} ours ${x.ours}`).toBe(true);
      expect(Number.isFinite(x.baseline) && x.baseline > 0, `${x.case} baseline ${x.baseline}`).toBe(true);
      expect(x.ratio, x.case).toBeCloseTo(x.ours / x.baseline, 12);
      if (x.case.endsWith('-vs-hf')) {
        expect(x.ratio_name, x.case).toBe('time-ratio-vs-hf');
        expect(x.dtype, x.case).toBe('f32');
      }
    }
    // the settings under the table: versions, threads, dtype, tokens, reps
    for (const group of ['models', 'interventions']) {
      expect(r.stdout).toMatch(new RegExp(`^${group}: HF transformers 5\\.\\d+\\S*, torch 2\\.\\d+\\S* \\(Python [\\d.]+\\) on the CPU, \\d+ threads;.*float32 weights on both sides;.*median of 3`, 'm'));
    }
    expect(r.stdout).toMatch(/^models: .*; 4 new tokens;/m);
    expect(r.stdout).toMatch(/time-ratio-vs-hf/);
  });
});
