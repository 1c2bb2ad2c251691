/**
 * Chameleon against HF transformers itself: tiny ChameleonForConditionalGeneration
 * checkpoints written by transformers (`save_pretrained` of model and ChameleonProcessor;
 * test/hf/hf_chameleon.py), run by HF (eager attention, float32) and by phaselens.
 *
 * The tokenizer is not Chameleon's real one (no copy is at hand: the shared assets folder has
 * none): hf_chameleon.py trains a tiny byte-level BPE with Chameleon's special tokens
 * (<racm3:break>, <eoss>, <image>, the <reserved08706> separator) and wraps it as
 * PreTrainedTokenizerFast; the processor and the model read it like the real one.
 *
 * What is compared, and how close it must be:
 * - `input_ids` (ChameleonProcessor's: prompt + sep, <image> written out between
 *   start- and end-of-image, BOS) and `pixel_values` (LANCZOS, × 0.0078 − 1) exactly.
 *   A PNG is decoded by phaselens (its RGB must equal Pillow's convert('RGB')); the RGBA
 *   case's partial transparency then goes through our blend onto white, HF's through its
 *   processor's convert_to_rgb. A JPEG's pixels come from HF (jpeg-js's IDCT differs by ±1).
 * - `image_token_ids` (VQ encoder → quant_conv → codebook argmin → vocabulary_map)
 *   exactly, and the image must use ≥ MIN_CODES distinct codes (a broken encoder that maps
 *   everything to one codeword would otherwise pass).
 * - `hidden_states.{l}`, `residual_final` and the logits of the text columns: max|Δ| /
 *   max|HF| ≤ TOL = 1e-4 (f32 compute on the same weights; only the summation order and
 *   exp approximations differ, over 3 layers). The image-token columns of the logits are
 *   the float minimum on both sides, exactly (HF masks them; they would swamp the
 *   relative measure, so they are checked apart).
 * - greedy tokens: identical for NEW_TOKENS steps.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../../src/io/image.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { generate } from '../../src/models/generate.ts';
import type { Vlm, VlmInput } from '../../src/models/vlm.ts';
import { dumpActivations, type HostTensor } from '../../src/probes/dump.ts';
import { getGpu, relErr } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';
import { readRefSafetensors, type RefTensor } from '../reference/pyref.ts';
import { hfReference, type HfCase } from './hf-reference.ts';

const TOL = 1e-4;
const NEW_TOKENS = 16;
const MIN_CODES = 4;
const FLT_MIN = -3.4028234663852886e38;
const PNG = 'test/fixtures/images/000000039769.png';
const JPG = 'test/fixtures/images/000000011813.jpg';
/** 40×30 RGBA: alpha 0 left of x = 11, a ramp to 255 at x = 30, the bottom 6 rows opaque. */
const RGBA = 'test/fixtures/images/000000039769-rgba.png';

const base = { family: 'chameleon' as const, layout: 'hub' as const, new_tokens: NEW_TOKENS, topk: 5 };
const CASES: HfCase[] = [
  // 2 levels (16 px → 8×8 = 64 image tokens), attention blocks at level 0 too
  { ...base, name: 'chameleon-f32', dtype: 'float32', gqa: false, swin: false, levels: 2, attn: true, image_size: 16, resize: 16, seed: 11, image: PNG, prompt: '<image>What is shown in this image?' },
  // swin_norm, GQA, bf16 weights, 3 levels (32 px crop of a 40 px resize → 64 tokens), text around the image
  { ...base, name: 'chameleon-swin-gqa-bf16', dtype: 'bfloat16', gqa: true, swin: true, levels: 3, attn: false, image_size: 32, resize: 40, seed: 12, image: JPG, prompt: 'Look: <image> Describe the picture.' },
  // the mid block's attention 160 channels wide (channel_multiplier [1, 5]) over 12×12 = 144
  // positions (neither a multiple of the matmul's tiles), an RGBA image with partial transparency
  { ...base, name: 'chameleon-wide-rgba', dtype: 'float32', gqa: false, swin: false, levels: 2, attn: false, mult: [1, 5], image_size: 24, resize: 30, seed: 13, image: RGBA, prompt: '<image>What is shown in this image?' },
];

let root: string;
beforeAll(async () => {
  root = await hfReference(CASES, 'chameleon');
}, 600_000);

for (const c of CASES) {
  describe(`HF transformers parity: ${c.name} (chameleon, ${c.dtype}${c.gqa ? ', GQA' : ''}${c.swin ? ', swin_norm' : ''}, ${c.levels} VQ levels${c.mult ? `, channels × ${c.mult}` : ''})`, () => {
    let m: Vlm;
    let x: VlmInput;
    let ours: Map<string, HostTensor>;
    let hf: Map<string, RefTensor>;
    let info: { distinct_codes: number; image_code_ids: number[]; tokens: { image: [number, number] }; versions: { transformers: string } };

    beforeAll(async () => {
      const dir = join(root, c.name);
      hf = (await readRefSafetensors(join(dir, 'hf.safetensors'))).tensors;
      info = JSON.parse(readFileSync(join(dir, 'hf.json'), 'utf8'));
      const [height, width] = hf.get('image_rgb')!.shape;
      const pillow: RgbImage = { width, height, data: hf.get('image_rgb')!.data as Uint8Array };
      const rgb = c.image.endsWith('.png') ? readImageFile(c.image) : pillow;
      expect(rgb.data).toEqual(pillow.data);
      expect(!!rgb.alpha).toBe(c.image === RGBA);
      const gpu = await getGpu();
      m = await loadDir(gpu, join(dir, 'model'));
      x = m.prepare({ prompt: c.prompt }, rgb);
      ours = await dumpActivations(gpu, m, x);
    }, 300_000);

    it('input_ids and pixel_values as ChameleonProcessor gives them, exactly', () => {
      expect(Array.from(ours.get('input_ids')!.data)).toEqual(Array.from(hf.get('input_ids')!.data));
      expect(x.groups.image).toEqual(info.tokens.image);
      const p = ours.get('pixel_values')!;
      expect(p.shape).toEqual(hf.get('pixel_values')!.shape);
      expect(Array.from(p.data)).toEqual(Array.from(hf.get('pixel_values')!.data));
    });

    it(`image_token_ids exactly, with ≥ ${MIN_CODES} distinct codes`, () => {
      const got = Array.from(ours.get('image_token_ids')!.data);
      const want = Array.from(hf.get('image_token_ids')!.data);
      expect(got).toEqual(want);
      expect(info.distinct_codes).toBeGreaterThanOrEqual(MIN_CODES);
      expect(new Set(got).size).toBe(info.distinct_codes);
    });

    it(`every hidden state and the text logits within ${TOL} of their scale; image-token logits the float minimum`, () => {
      const L = m.lm.num_hidden_layers;
      const names = [...Array.from({ length: L + 1 }, (_, l) => `hidden_states.${l}`), 'residual_final'];
      const rows: string[] = [];
      for (const name of names) {
        const e = relErr(ours.get(name)!.data, hf.get(name)!.data);
        rows.push(`${name.padEnd(18)} ${e.toExponential(2)}`);
        expect(ours.get(name)!.shape, name).toEqual(hf.get(name)!.shape);
        expect(e, name).toBeLessThanOrEqual(TOL);
      }
      const got = ours.get('logits')!;
      const want = hf.get('logits')!;
      expect(got.shape).toEqual(want.shape);
      const V = want.shape[1];
      const image = new Set(info.image_code_ids);
      const text: number[][] = [[], []];
      for (let i = 0; i < want.data.length; i++) {
        if (image.has(i % V)) {
          expect(want.data[i]).toBe(FLT_MIN);
          expect(got.data[i], `logit ${i}`).toBe(FLT_MIN);
        } else {
          text[0].push(got.data[i]);
          text[1].push(want.data[i]);
        }
      }
      const e = relErr(text[0], text[1]);
      rows.push(`${'logits (text)'.padEnd(18)} ${e.toExponential(2)}`);
      expect(e).toBeLessThanOrEqual(TOL);
      console.log(`${c.name} (transformers ${info.versions.transformers}):\n  ${rows.join('\n  ')}`);
    });

    it(`greedy generation gives HF's ${NEW_TOKENS} tokens`, async () => {
      const g = await generate(await getGpu(), m, x, NEW_TOKENS, undefined, { stopAtEos: false });
      expect(g.tokens).toEqual(Array.from(hf.get('greedy_tokens')!.data));
      expect(g.tokens.length).toBe(NEW_TOKENS);
    });
  });
}
