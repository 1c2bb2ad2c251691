/**
 * LogitLens in row chunks: when a layer's logits [visual tokens, vocab] would not fit the
 * device's storage-binding limit, src/probes/logit-lens.ts runs lm_head on chunks of rows.
 * A tiny LLaVA-NeXT (37 visual tokens, the real 32064 vocabulary) is analyzed on the real
 * device, then again with the limit the probe sees lowered to 5 rows of f32 logits (plus a
 * few bytes), so the rows go in 8 chunks, the last one short (37 = 7·5 + 2). Each row's
 * logits depend on that row alone, and the same kernels run on each row, so the top-k ids
 * must be equal and the probabilities equal to 1e-6 (the matmul variant may change with
 * the row count M; its f32 sums over 32 channels differ by a few ulp).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeImage, type AnalyzeOptions } from '../../src/analysis/analyze-image.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import type { RgbImage } from '../../src/io/image.ts';
import type { Vlm } from '../../src/models/vlm.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';

const TOL = 1e-6;
const rand = mulberry32(3);
const IMAGE: RgbImage = { width: 640, height: 480, data: Uint8Array.from({ length: 640 * 480 * 3 }, () => Math.floor(rand() * 256)) };
const item = { id: 'one', image: 'one.png', captions: ['a cat on a mat'] };
const options: AnalyzeOptions = { prompt: { prompt: 'What is this?', chat: true }, dropBos: false, topk: 4, smooth: 1, padToSquare: false };

let tmp: string;
let m: Vlm;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'phaselens-lens-chunks-'));
  await makeTiny({ arch: 'llava_next', out: join(tmp, 'next'), seed: 2, dtype: 'f32' });
  m = await loadDir(await getGpu(), join(tmp, 'next'));
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `f` while `gpu.limits` reports `bytes` as its binding and buffer limits (the weights are already loaded). */
async function withLimit<T>(gpu: Gpu, bytes: number, f: () => Promise<T>): Promise<T> {
  const real = gpu.limits;
  const small = new Proxy(real, { get: (t, k) => (k === 'maxBufferSize' || k === 'maxStorageBufferBindingSize' ? bytes : (t as unknown as Record<string | symbol, unknown>)[k]) });
  Object.defineProperty(gpu, 'limits', { value: small, configurable: true, writable: true });
  try {
    return await f();
  } finally {
    Object.defineProperty(gpu, 'limits', { value: real, configurable: true, writable: true });
  }
}

type Lens = { top_ids: number[][][]; top_probs: number[][][]; positions: number[] };

describe('LogitLens under a small storage-binding limit', () => {
  it('runs lm_head on chunks of rows and gives the same top-k as one call', async () => {
    const gpu = await getGpu();
    const vocab = m.lm.vocab_size;
    expect(vocab).toBe(32064);
    const whole = ((await analyzeImage(gpu, m, item, IMAGE, options)) as { logit_lens: Lens }).logit_lens;
    expect(whole.positions.length).toBe(37);
    // one row more than 5 does not fit: the whole span (37 rows) would throw without chunks
    const chunked = ((await withLimit(gpu, 5 * 4 * vocab + 16, () => analyzeImage(gpu, m, item, IMAGE, options))) as { logit_lens: Lens }).logit_lens;
    expect(chunked.top_ids).toEqual(whole.top_ids);
    let worst = 0;
    whole.top_probs.forEach((layer, l) => layer.forEach((row, r) => row.forEach((p, i) => (worst = Math.max(worst, Math.abs(p - chunked.top_probs[l][r][i]))))));
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(whole.top_ids.length).toBe(m.lm.num_hidden_layers + 1);
  });
});
