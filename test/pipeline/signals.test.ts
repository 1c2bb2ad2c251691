/**
 * Preemption: a real `analyze` run gets SIGTERM (what Slurm sends at preemption or the time
 * limit) mid-way — it finishes the image in hand, writes the aggregate of what it has,
 * exits 143, and the re-run resumes with nothing lost; a run killed with SIGKILL at any
 * moment leaves only whole result files, and the re-run completes the set.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const COCO = join(import.meta.dirname, '../fixtures/coco_mini');
const DATA = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;
const work = mkdtempSync(join(tmpdir(), 'phaselens-signals-'));
const model = join(work, 'tiny');
const N = 6; // the images shipped in test/fixtures/coco_mini
const args = (out: string) => [CLI, 'analyze', '--model', model, '--data', DATA, '--limit', String(N), '--chat', '--out', out];

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 6 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const results = (out: string) => (existsSync(join(out, 'images')) ? readdirSync(join(out, 'images')) : []);

/** Starts a run and sends `signal` once `after` results exist; resolves with the exit code and stderr. */
function runAndSignal(out: string, signal: NodeJS.Signals, after: number): Promise<{ code: number | null; signal: string | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args(out), { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const poll = setInterval(() => {
      if (results(out).filter((f) => f.endsWith('.json')).length >= after) {
        clearInterval(poll);
        p.kill(signal);
      }
    }, 20);
    p.on('exit', (code, sig) => {
      clearInterval(poll);
      resolve({ code, signal: sig, err });
    });
  });
}

describe('signals', () => {
  it('SIGTERM: the current image is finished, the run exits 143, the re-run resumes', async () => {
    const out = join(work, 'term');
    const r = await runAndSignal(out, 'SIGTERM', 2);
    expect(r.code).toBe(143);
    expect(r.err).toMatch(/SIGTERM: stopping after the current item/);
    expect(r.err).toMatch(/stopped by SIGTERM with \d+ item\(s\) left/);
    const done = results(out);
    expect(done.length).toBeGreaterThanOrEqual(2);
    expect(done.length).toBeLessThan(N);
    for (const f of done) JSON.parse(readFileSync(join(out, 'images', f), 'utf8'));
    const again = spawnSync(process.execPath, args(out), { encoding: 'utf8', timeout: 300_000 });
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`${N - done.length} analysed, ${done.length} already done, 0 failed`));
  });

  it('SIGKILL at any moment leaves only whole result files', async () => {
    const out = join(work, 'kill');
    const r = await runAndSignal(out, 'SIGKILL', 1);
    expect(r.signal).toBe('SIGKILL');
    for (const f of results(out)) {
      if (f.endsWith('.json')) JSON.parse(readFileSync(join(out, 'images', f), 'utf8'));
    }
    const again = spawnSync(process.execPath, args(out), { encoding: 'utf8', timeout: 300_000 });
    expect(again.status).toBe(0);
    expect(results(out).filter((f) => f.endsWith('.json'))).toHaveLength(N);
    expect(results(out).every((f) => f.endsWith('.json'))).toBe(true); // stale temporary files removed
  });
});
