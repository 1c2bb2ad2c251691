/**
 * Parity with HF transformers itself: tiny LLaVA-1.5 and InstructBLIP checkpoints written by
 * transformers (`save_pretrained` of model and processor; hf_parity.py), in the hub layout
 * and in transformers 5's, with f32, f16 and bf16 weights, with and without grouped-query
 * attention, at two image sizes, run by HF (eager attention, float32) and by phaselens.
 *
 * What is compared, and how close it must be:
 * - `input_ids`, `qformer_input_ids` of the processor: exactly.
 * - `pixel_values`: phaselens's processor on the image as Pillow decodes it (HF writes the
 *   decoded RGB) must equal HF's bit for bit: both run Pillow's resampling in 8-bit fixed
 *   point and numpy's float32 rescale/normalise (src/io/image-processor.ts). Every forward
 *   below starts from these pixels, so it compares the models on identical inputs.
 *   phaselens's own decoder is checked too: PNG exactly; JPEG within the bound of
 *   test/io/image.test.ts (jpeg-js's IDCT rounds differently from libjpeg-turbo's: ≤ 4
 *   8-bit levels after resizing, mean ≤ 0.35 levels), measured in levels as |Δ|·std·255.
 * - every tensor of the dump (hidden_states.{l}, residual_final, logits, the towers' hidden
 *   states, image_features, …): rel = max|ours − HF| / max|HF| per tensor ≤ TOL = 1e-4. HF
 *   runs in float32 on the checkpoint's weights upcast (f16 and bf16 widen to f32 exactly);
 *   phaselens keeps f16 weights packed and bf16 widened, and computes in f32: the same
 *   products, so only the f32 summation order and the kernels' exp/erf approximations
 *   (≤ 1.2e-7 relative) differ, compounded over a few layers. The 16-bit cases therefore
 *   keep the f32 bound; nothing is loosened for them.
 * - greedy tokens: identical for NEW_TOKENS steps (HF `generate` with eos_token_id=None and
 *   phaselens `generate` with stopAtEos false: plain argmax, EOS neither stops nor is masked).
 * - analyze's metrics against bench/gpu/hf_metrics.py on HF's hidden states and attention
 *   maps: contextualization absolute ≤ TOL (cosine means lie in [−1, 1]); norm-based
 *   attention per layer and per head, and LogitLens probabilities, relative to their scale
 *   ≤ TOL; LogitLens ids identical, as long as HF's, except a swap of two candidates whose
 *   HF log-probabilities lie within TIE = 1e-5 of each other (what f32 rounding can reorder).
 * - the random weights give peaked attention (the last token's largest weight in every
 *   decoder layer and head ≥ 3× uniform), so a wrong mask or position would show.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../../src/io/image.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { generate } from '../../src/models/generate.ts';
import type { PromptSpec, Vlm, VlmInput } from '../../src/models/vlm.ts';
import { dumpActivations, type HostTensor } from '../../src/probes/dump.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';
import { readRefSafetensors, type RefTensor } from '../reference/pyref.ts';
import { compareDump, compareMetrics, maxAbs, TOL, type Metrics } from './compare.ts';
import { hfReference, type HfCase } from './hf-reference.ts';

const ROOT = join(import.meta.dirname, '../..');
const JPEG_MAX_LEVELS = 4;
const JPEG_MEAN_LEVELS = 0.35;
const NEW_TOKENS = 16;
const TOPK = 5;

const PNG = 'test/fixtures/images/000000039769.png';
const JPG = 'test/fixtures/images/000000011813.jpg';
const JPG2 = 'test/fixtures/images/000000229358.jpg';
const base = { new_tokens: NEW_TOKENS, topk: TOPK };
const llava = { ...base, family: 'llava' as const, prompt: 'What is shown in this image?' };
const blip = { ...base, family: 'instructblip' as const, prompt: 'What is unusual about this image?' };
// 42 = 3×3 patches of 14 px, 56 = 4×4; CLIP resizes the short side to `resize` and crops the centre
// `reload`: the same folder loaded again with phaselens's --dtype conversion, every dump
// tensor compared with HF's. f16 → f32 widens exactly, so TOL holds; f32 → f16 rounds every
// weight (relative 2^-11 ≈ 4.9e-4) while HF keeps f32: the bound is 1e-2 of each tensor's
// scale (a few layers of 4.9e-4 errors), and tokens are not compared (a near-tie may flip).
type Case = HfCase & { reload?: { dtype: 'f16' | 'f32'; tol: number } };
const CASES: Case[] = [
  { ...llava, name: 'llava-hub-f32', layout: 'hub', dtype: 'float32', gqa: false, max_shard_size: '5MB', image_size: 42, resize: 42, seed: 1, image: PNG, reload: { dtype: 'f16', tol: 1e-2 }, variant: { drop_bos: true, query: 10, topk: 3 } },
  { ...llava, name: 'llava-t5-f32-gqa', layout: 'transformers5', dtype: 'float32', gqa: true, image_size: 56, resize: 64, seed: 2, image: JPG },
  { ...llava, name: 'llava-t5-f16', layout: 'transformers5', dtype: 'float16', gqa: false, image_size: 42, resize: 50, seed: 3, image: JPG2, reload: { dtype: 'f32', tol: TOL } },
  { ...llava, name: 'llava-hub-bf16-gqa', layout: 'hub', dtype: 'bfloat16', gqa: true, image_size: 56, resize: 56, seed: 4, image: PNG },
  { ...blip, name: 'instructblip-hub-f32', layout: 'hub', dtype: 'float32', gqa: false, image_size: 42, resize: 42, seed: 5, image: PNG, reload: { dtype: 'f16', tol: 1e-2 } },
  { ...blip, name: 'instructblip-t5-f32-gqa', layout: 'transformers5', dtype: 'float32', gqa: true, image_size: 56, resize: 56, seed: 6, image: JPG },
  // BOS sits after the 8 queries: dropping it must not drop position 0; query 3 is a query token
  { ...blip, name: 'instructblip-hub-f16-gqa', layout: 'hub', dtype: 'float16', gqa: true, image_size: 56, resize: 56, seed: 7, image: JPG2, variant: { drop_bos: true, query: 3, topk: 3 } },
  { ...blip, name: 'instructblip-t5-bf16', layout: 'transformers5', dtype: 'bfloat16', gqa: false, max_shard_size: '3MB', image_size: 42, resize: 42, seed: 8, image: PNG },
];

interface HfInfo {
  tokens: { seq: number; image: [number, number]; text: number[]; query: number };
  attention_last_row_min_head_max: number[];
  uniform: number;
  metrics: Metrics;
  variant: { bos: number; text: number[]; metrics: Metrics } | null;
  versions: { torch: string; transformers: string };
}

let root: string;
beforeAll(async () => {
  root = await hfReference(CASES.map(({ reload: _, ...c }) => c));
}, 600_000);

for (const c of CASES) {
  describe(`HF transformers parity: ${c.name} (${c.family}, ${c.layout} layout, ${c.dtype}${c.gqa ? ', GQA' : ''}, ${c.image_size} px)`, () => {
    const spec: PromptSpec = c.family === 'llava' ? { prompt: c.prompt, chat: true } : { prompt: c.prompt };
    let m: Vlm;
    let x: VlmInput;
    let ours: Map<string, HostTensor>;
    let hf: Map<string, RefTensor>;
    let info: HfInfo;
    let rgb: RgbImage;

    beforeAll(async () => {
      const dir = join(root, c.name);
      hf = (await readRefSafetensors(join(dir, 'hf.safetensors'))).tensors;
      info = JSON.parse(readFileSync(join(dir, 'hf.json'), 'utf8'));
      const [height, width] = hf.get('image_rgb')!.shape;
      rgb = { width, height, data: hf.get('image_rgb')!.data as Uint8Array };
      const gpu = await getGpu();
      m = await loadDir(gpu, join(dir, 'model'));
      x = m.prepare(spec, rgb);
      ours = await dumpActivations(gpu, m, x);
    }, 300_000);

    it('the processor gives the same input_ids and, from the same decoded image, the same pixel_values', () => {
      expect(Array.from(ours.get('input_ids')!.data)).toEqual(Array.from(hf.get('input_ids')!.data));
      if (c.family === 'instructblip') expect(Array.from(ours.get('qformer_input_ids')!.data)).toEqual(Array.from(hf.get('qformer_input_ids')!.data));
      const p = ours.get('pixel_values')!;
      expect(p.shape).toEqual([3, c.image_size, c.image_size]);
      expect(p.shape).toEqual(hf.get('pixel_values')!.shape);
      expect(maxAbs(p.data, hf.get('pixel_values')!.data)).toBe(0);
    });

    it(`phaselens's own decoder: ${c.image.endsWith('.png') ? 'the same pixel_values' : `within ${JPEG_MAX_LEVELS} levels of Pillow's`}`, () => {
      const own = m.prepare(spec, readImageFile(join(ROOT, c.image))).pixels!;
      const want = hf.get('pixel_values')!.data;
      const plane = c.image_size * c.image_size;
      const std = m.processor.imageStd;
      let max = 0;
      let sum = 0;
      for (let i = 0; i < want.length; i++) {
        const levels = Math.abs(own.data[i] - want[i]) * std[Math.floor(i / plane)] * 255;
        max = Math.max(max, levels);
        sum += levels;
      }
      console.log(`${c.name}: own decoder vs Pillow: max ${max.toFixed(2)}, mean ${(sum / want.length).toFixed(3)} levels`);
      if (c.image.endsWith('.png')) expect(max).toBe(0);
      else {
        expect(max).toBeLessThanOrEqual(JPEG_MAX_LEVELS + 1e-3);
        expect(sum / want.length).toBeLessThanOrEqual(JPEG_MEAN_LEVELS);
      }
    });

    it(`every hidden state, the towers' outputs and the logits within ${TOL} of their scale`, () => {
      compareDump(`${c.name} (transformers ${info.versions.transformers})`, ours, hf, TOL, m.lm.num_hidden_layers);
    });

    if (c.reload) {
      const r = c.reload;
      it(`loaded with --dtype ${r.dtype}: every dump tensor within ${r.tol} of its scale`, async () => {
        const gpu = await getGpu();
        const m2 = await loadDir(gpu, join(root, c.name, 'model'), { dtype: r.dtype });
        compareDump(`${c.name} --dtype ${r.dtype}`, await dumpActivations(gpu, m2, x), hf, r.tol, m2.lm.num_hidden_layers);
      });
    }

    it(`greedy generation gives HF's ${NEW_TOKENS} tokens`, async () => {
      const g = await generate(await getGpu(), m, x, NEW_TOKENS, undefined, { stopAtEos: false });
      expect(g.tokens).toEqual(Array.from(hf.get('greedy_tokens')!.data));
      expect(g.tokens.length).toBe(NEW_TOKENS);
    });

    it('the random weights give peaked attention (a wrong mask or position would show)', () => {
      expect(info.attention_last_row_min_head_max.length).toBe(m.lm.num_hidden_layers);
      for (const p of info.attention_last_row_min_head_max) expect(p).toBeGreaterThanOrEqual(3 * info.uniform);
    });

    it('analyze metrics match the torch metrics of HF outputs', async () => {
      await compareMetrics(c.name, m, spec, rgb, { dropBos: false, topk: TOPK }, { image: info.tokens.image, text: info.tokens.text }, info.metrics);
    });

    if (c.variant) {
      const v = c.variant;
      it(`analyze metrics with BOS ${v.drop_bos ? 'dropped' : 'kept'}, query ${v.query}, top-${v.topk}`, async () => {
        expect(info.variant!.bos).toBe(c.family === 'llava' ? 0 : 8);
        await compareMetrics(`${c.name} variant`, m, spec, rgb, { dropBos: v.drop_bos, query: v.query, topk: v.topk }, { image: info.tokens.image, text: info.variant!.text }, info.variant!.metrics);
      });
    }
  });
}
