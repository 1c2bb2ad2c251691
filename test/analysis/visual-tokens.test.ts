/**
 * `--visual-tokens all|patches` on a tiny LLaVA-NeXT (make-tiny: 42-px tiles, a 640×480
 * image → base view 3×3, then 4 kept rows of 6 patches each followed by an image_newline;
 * 37 image positions, 4 of them newlines). The GPU contextualization of `analyze` is checked
 * against the pair-by-pair f64 reference (test/reference/contextualization.ts) on the
 * hidden states `dump` reads back from the same model and input — with `patches` over the
 * image positions minus the newlines, with `all` over every image position — and the two
 * sets must give different numbers (so the test sees which set the GPU used). Tolerance
 * 2e-6 absolute, as the kernel's own test: f32 sums of unit vectors over ≤ 40 rows of 32
 * channels against f64 pairs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeImage, checkVisualTokens, type AnalyzeOptions } from '../../src/analysis/analyze-image.ts';
import { aggregate, type ImageMetrics } from '../../src/analysis/aggregate.ts';
import type { RgbImage } from '../../src/io/image.ts';
import { FAMILIES } from '../../src/models/registry.ts';
import type { Vlm } from '../../src/models/vlm.ts';
import { dumpActivations } from '../../src/probes/dump.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { contextualizationRef } from '../reference/contextualization.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';

const TOL = 2e-6;
const rand = mulberry32(11);
const IMAGE: RgbImage = { width: 640, height: 480, data: Uint8Array.from({ length: 640 * 480 * 3 }, () => Math.floor(rand() * 256)) };
const item = { id: 'one', image: 'one.png', captions: ['a cat on a mat'] };

let tmp: string;
let m: Vlm;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'phaselens-visual-tokens-'));
  await makeTiny({ arch: 'llava_next', out: join(tmp, 'next'), seed: 5, dtype: 'f32' });
  m = await loadDir(await getGpu(), join(tmp, 'next'));
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const options = (visualTokens: 'all' | 'patches'): AnalyzeOptions => ({ prompt: { prompt: 'What is this?', chat: true }, dropBos: false, visualTokens, topk: 3, smooth: 1, padToSquare: false });

describe('--visual-tokens on LLaVA-NeXT', () => {
  it('the GPU contextualization uses the chosen set: equal to the host reference with and without the newlines', async () => {
    const gpu = await getGpu();
    const x = m.prepare(options('all').prompt, IMAGE);
    const [s, e] = x.groups.image;
    const newlines = x.groups.newlines;
    expect(newlines.map((p) => p - s)).toEqual([15, 22, 29, 36]);
    const dump = await dumpActivations(gpu, m, x);
    const L = m.lm.num_hidden_layers;
    const d = m.lm.hidden_size;
    const all = Array.from({ length: e - s }, (_, i) => s + i);
    const patches = all.filter((p) => !newlines.includes(p));
    const text = x.groups.text;

    const byAll = (await analyzeImage(gpu, m, item, IMAGE, options('all'))) as unknown as ImageMetrics & Record<string, any>;
    const byPatches = (await analyzeImage(gpu, m, item, IMAGE, options('patches'))) as unknown as ImageMetrics & Record<string, any>;
    for (const [got, set] of [[byAll, all], [byPatches, patches]] as const) {
      for (let l = 0; l <= L; l++) {
        const ref = contextualizationRef(dump.get(`hidden_states.${l}`)!.data as Float32Array, d, set, text);
        expect(Math.abs(got.contextualization.inter[l] - ref.inter), `${got.options.visual_tokens} inter ${l}`).toBeLessThanOrEqual(TOL);
        expect(Math.abs(got.contextualization.intra_image[l] - ref.intra_image), `${got.options.visual_tokens} intra_image ${l}`).toBeLessThanOrEqual(TOL);
        expect(Math.abs(got.contextualization.intra_text[l] - ref.intra_text), `${got.options.visual_tokens} intra_text ${l}`).toBeLessThanOrEqual(TOL);
      }
      const pre = contextualizationRef(dump.get('residual_final')!.data as Float32Array, d, set, text);
      expect(Math.abs(got.contextualization.last_layer_prenorm!.inter - pre.inter)).toBeLessThanOrEqual(TOL);
    }
    // the newlines change the numbers: the comparison above tells the sets apart
    const gap = Math.max(...byAll.contextualization.intra_image.map((v, l) => Math.abs(v - byPatches.contextualization.intra_image[l])));
    expect(gap).toBeGreaterThan(100 * TOL);

    // the choice and the newlines are recorded; the LogitLens covers the chosen set
    expect(byPatches.options.visual_tokens).toBe('patches');
    expect(byAll.options.visual_tokens).toBe('all');
    expect(byPatches.tokens.newlines).toEqual(newlines);
    expect(byPatches.tokens.n_visual).toBe(33);
    expect(byAll.tokens.n_visual).toBe(37);
    expect(byAll.logit_lens!.positions).toEqual(all.map((p) => p - s));
    expect(byPatches.logit_lens!.positions).toEqual(patches.map((p) => p - s));
    expect(byPatches.logit_lens!.top_ids[0]).toEqual(byAll.logit_lens!.top_ids[0].filter((_, j) => !newlines.includes(s + j)));

    // the aggregate's image share leaves the newline keys out of the numerator with `patches`
    const row = byAll.norm_attention!.layer[0];
    const sum = (ps: number[]) => ps.reduce((a, p) => a + row[p], 0);
    const total = row.reduce((a, v) => a + v, 0);
    expect(aggregate([byAll]).norm_attention_image_share![0].mean).toBeCloseTo(sum(all) / total, 6);
    expect(aggregate([byPatches]).norm_attention_image_share![0].mean).toBeCloseTo(sum(patches) / total, 6);
    expect(aggregate([byPatches]).logit_lens!.full).toBe(true);
  }, 300_000);

  it('patches is refused where the visual tokens are no patches, accepted where there are no newlines', () => {
    for (const f of FAMILIES) {
      if (f.capabilities.patchGrid) expect(() => checkVisualTokens('patches', f.capabilities), f.modelType).not.toThrow();
      else expect(() => checkVisualTokens('patches', f.capabilities), f.modelType).toThrow("--visual-tokens patches: this family's visual tokens are not image patches");
      expect(() => checkVisualTokens('newlines', f.capabilities)).toThrow('--visual-tokens must be one of all, patches, not "newlines"');
    }
  });
});
