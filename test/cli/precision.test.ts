/**
 * `--precision` from the command line to the outputs: its refusals (a bad value, f16 with
 * --dtype f32 — both before the GPU opens — and a device without shader-f16, at the load),
 * `dump --precision f16` against `dump` on the same checkpoint (f16 weights: only the
 * arithmetic differs, by a few f16 steps, README "Precision f16"), and how outputs record it.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { describePrecision } from '../../src/ops/precision.ts';
import { runMeta } from '../../src/pipeline/outputs.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { relErr } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';
import { readRefSafetensors } from '../reference/pyref.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const work = mkdtempSync(join(tmpdir(), 'phaselens-precision-'));
const model = join(work, 'llava');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, err: r.stderr };
}

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 5, dtype: 'f16' });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const dump = (out: string, ...more: string[]) => cli('dump', '--model', model, '--image', IMAGE, '--prompt', '<image>\nWhat is this?', '--out', join(work, out), ...more);

describe('--precision', () => {
  for (const [what, args, msg] of [
    ['a value other than f32 or f16', ['--precision', 'f64'], /^phaselens: --precision must be f32 or f16, got f64$/],
    ['f16 with --dtype f32', ['--precision', 'f16', '--dtype', 'f32'], /^phaselens: --precision f16 computes with f16 weights .*leave --dtype out or make it f16$/],
  ] as const) {
    it(`refuses ${what} in one line, before the GPU opens`, () => {
      const r = dump('x.safetensors', ...args);
      expect(r.err.trim()).toMatch(msg);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.code).toBe(2);
    });
  }

  it('dump --precision f16: recorded in the metadata, a few f16 steps from the f32 dump', async () => {
    for (const [out, args] of [['f32.safetensors', []], ['f16.safetensors', ['--precision', 'f16']]] as const) {
      const r = dump(out, ...args);
      expect(r.code, r.err).toBe(0);
    }
    const f32 = await readRefSafetensors(join(work, 'f32.safetensors'));
    const f16 = await readRefSafetensors(join(work, 'f16.safetensors'));
    expect(f32.metadata.precision).toBe('f32');
    expect(f16.metadata.precision).toBe('f16');
    expect(f16.metadata.weight_dtypes).toBe('f16');
    const e = relErr(f16.tensors.get('logits')!.data, f32.tensors.get('logits')!.data);
    expect(e).toBeGreaterThan(1e-4); // the f32 parity bound: the rounding is in effect
    expect(e).toBeLessThan(8 * 2 ** -11); // a few f16 steps (measured ~2 on make-tiny)
  }, 600_000);

  it('slurm passes it to the tasks, and refuses a bad value before writing a job', () => {
    writeFileSync(join(work, 'q.jsonl'), '{"image": "cats.png", "question": "What is this?", "answers": ["cats"]}\n');
    copyFileSync(IMAGE, join(work, 'cats.png'));
    const slurm = (jobs: string, value: string) => cli('slurm', '--shards', '1', '--jobs', join(work, jobs), '--', 'analyze', '--model', model, '--data', `vqa:${join(work, 'q.jsonl')}:${work}`, '--out', join(work, `${jobs}-out`), '--precision', value);
    expect(slurm('jobs', 'f16').code).toBe(0);
    expect(readFileSync(join(work, 'jobs', 'array.sbatch'), 'utf8')).toMatch(/analyze .* --precision f16/);
    const bad = slurm('jobs-bad', 'f8');
    expect(bad.err.trim()).toBe('phaselens: --precision must be f32 or f16, got f8');
    expect(bad.code).toBe(2);
    expect(existsSync(join(work, 'jobs-bad'))).toBe(false);
  });

  it('a device without shader-f16 is refused at the load, naming the feature', async () => {
    const gpu = await createNodeGpu({ features: { f16: false } });
    await expect(loadDir(gpu, model, { precision: 'f16' })).rejects.toThrow(/^precision f16 needs the shader-f16 feature, which this GPU .* does not offer/);
    gpu.destroy();
  });

  it("reports' metadata names the precision (results written before it existed ran at f32)", () => {
    const agg = { model: 'm', model_family: 'llava', n_items: 1 };
    const run = { data: 'd', failed: 0 };
    expect(runMeta({ ...agg, options: { precision: 'f16' } }, run).compute).toBe(describePrecision('f16'));
    expect(runMeta({ ...agg, options: {} }, run).compute).toBe(describePrecision('f32'));
    expect(describePrecision('f16')).toMatch(/^precision f16 \(HF fp16\)/);
    expect(describePrecision(undefined)).toMatch(/^precision f32/);
  });
});
