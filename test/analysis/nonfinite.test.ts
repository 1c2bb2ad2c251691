/**
 * No silent non-finite numbers: a NaN planted in one weight of a real checkpoint file makes
 * `analyze` record the item in errors.json with the first hook point where the NaN
 * appeared (found on the GPU, src/probes/finite.ts), and say so at the end; any NaN or
 * Inf left in a result object fails the item with its path instead of becoming `null`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runItems } from '../../src/pipeline/runner.ts';
import { firstNonFinite } from '../../src/util/non-finite.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { openFileSource } from '../../src/io/source-node.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const FIX = join(import.meta.dirname, '../fixtures/images');
const work = mkdtempSync(join(tmpdir(), 'phaselens-nonfinite-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Overwrites element 0 of `name` (F32) in DIR/model.safetensors with `value`. */
async function plant(dir: string, name: string, value: number): Promise<void> {
  const path = join(dir, 'model.safetensors');
  const f = await SafetensorsFile.open(await openFileSource(path));
  const { offset, dtype } = f.info(name);
  await f.close();
  expect(dtype).toBe('F32');
  const fd = openSync(path, 'r+');
  writeSync(fd, new Uint8Array(Float32Array.of(value).buffer), 0, 4, offset);
  closeSync(fd);
}

describe('non-finite values', () => {
  it('a NaN weight in decoder layer 1: every item fails with the hook point where it first appears', async () => {
    const model = join(work, 'nan');
    await makeTiny({ arch: 'llava', out: model, seed: 2 });
    await plant(model, 'language_model.model.layers.1.mlp.down_proj.weight', NaN);
    const data = join(work, 'images');
    mkdirSync(data);
    for (const f of ['000000039769.png', '000000011813.jpg']) copyFileSync(join(FIX, f), join(data, f));
    const out = join(work, 'out');
    const r = spawnSync(process.execPath, [CLI, 'analyze', '--model', model, '--data', `folder:${data}`, '--out', out], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/0 analysed, 0 already done, 2 failed/);
    const errors = JSON.parse(readFileSync(join(out, 'errors.json'), 'utf8')).errors as { message: string }[];
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e.message).toMatch(/non-finite values \(NaN or Inf\) in the activations: \d+ at lm\.blocks\.1\.resid_post,/);
    expect(readdirSync(join(out, 'images'))).toEqual([]);

    // inspect --check-values finds the tensor; the clean checkpoint passes
    const bad = spawnSync(process.execPath, [CLI, 'inspect', model, '--check-values'], { encoding: 'utf8', timeout: 120_000 });
    expect(bad.stdout).toMatch(/language_model\.model\.layers\.1\.mlp\.down_proj\.weight: 1 non-finite value/);
    expect(bad.stderr).toMatch(/1 tensor\(s\) hold NaN or Inf/);
    expect(bad.status).toBe(2);
    const clean = join(work, 'clean');
    await makeTiny({ arch: 'instructblip', out: clean, seed: 2, dtype: 'f16' });
    const ok = spawnSync(process.execPath, [CLI, 'inspect', clean, '--check-values'], { encoding: 'utf8', timeout: 120_000 });
    expect(ok.stdout).toMatch(/values\s+\d+ in 165 floating-point tensors: all finite/);
    expect(ok.status).toBe(0);
  });

  it('a NaN or Inf left in a result fails the item with its path', async () => {
    expect(firstNonFinite({ a: [1, 2, { b: [0, Infinity] }] })).toEqual({ path: 'a[2].b[1]', value: Infinity });
    expect(firstNonFinite({ a: [1, null, 'x'] })).toBeNull();
    const out = join(work, 'runner');
    const s = await runItems([{ id: 'good' }, { id: 'bad' }], out, async (it) => ({ p: it.id === 'bad' ? [0.5, NaN] : [0.5, 0.25] }), { progress: false });
    expect([s.done, s.failed]).toEqual([1, 1]);
    expect(s.errors[0].message).toBe('non-finite value (NaN) at p[1]');
    expect(readdirSync(join(out, 'images'))).toEqual(['good.json']);
  });
});
