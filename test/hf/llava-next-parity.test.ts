/**
 * LLaVA-NeXT against HF transformers itself: tiny `LlavaNextForConditionalGeneration`
 * checkpoints written by transformers (model and LlavaNextProcessor `save_pretrained`,
 * hf_parity.py) with Vicuna (LLaMA), Llama-3 (128k byte-level BPE vocabulary, GQA,
 * rope_theta 500000 with rope_type llama3) and Mistral (GQA, a sliding window shorter than
 * the sequence) language models, in the hub layout and in transformers 5's; 42- and 56-px
 * tiles; images cut to aspect ratios that give 1×2, 2×1 and 2×2 tile grids and unpad rows
 * (wide) and columns (tall).
 *
 * What is compared (the tolerances of test/hf/parity.test.ts, whose header justifies them):
 * - the processor: pixel_values [views, 3, t, t] (base view first) bit for bit from the same
 *   decoded image, and input_ids exactly (the `<image>` expansion is the processor's count);
 *   over a sweep of 99 image sizes × 2 geometries, select_best_resolution and the token
 *   count exactly.
 * - the checkpoint opens in its layout (image_newline included) with every tensor.
 * - every dump tensor within TOL = 1e-4 of its scale: hidden_states.{l}, residual_final,
 *   logits, every view's vision_hidden_states.{k} [views, 1 + P², d] and the packed
 *   image_features (base view, unpadded grid, image_newline after each row) — the packing
 *   is a gather of the projected features, so an index off by one row or column shows
 *   as an error of the features' own size.
 * - greedy tokens: HF's 16, EOS not stopping.
 * - analyze's metrics against hf_metrics.py on HF's outputs (contextualization over the
 *   image span incl. the newline positions, norm attention — with Mistral's window —
 *   LogitLens), and the random weights' attention is peaked (≥ 3× uniform).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/models/generate.ts';
import type { PromptSpec, Vlm, VlmInput } from '../../src/models/vlm.ts';
import { dumpActivations, type HostTensor } from '../../src/probes/dump.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';
import { compareDump, compareMetrics, maxAbs, TOL, type Metrics } from './compare.ts';
import { anyresLayout, anyresTokens, preprocessAnyres, selectBestResolution } from '../../src/io/image-processor-llava-next.ts';
import { parseImageProcessorConfig } from '../../src/io/image-processor.ts';
import type { RgbImage } from '../../src/io/image.ts';
import { readRefSafetensors, type RefTensor } from '../reference/pyref.ts';
import { NEXT_CASES, nextReference } from './llava-next-cases.ts';

let root: string;
beforeAll(async () => {
  root = await nextReference();
}, 900_000);

function hfImage(hf: Map<string, RefTensor>): RgbImage {
  const t = hf.get('image_rgb')!;
  return { height: t.shape[0], width: t.shape[1], data: t.data as Uint8Array };
}

function processorConfig(dir: string, layout: string) {
  const file = join(dir, layout === 'hub' ? 'preprocessor_config.json' : 'processor_config.json');
  const json = JSON.parse(readFileSync(file, 'utf8'));
  return parseImageProcessorConfig(layout === 'hub' ? json : json.image_processor, file);
}

describe('LlavaNextImageProcessor / LlavaNextProcessor arithmetic against HF', () => {
  it('select_best_resolution and the image-token count over 198 sizes', () => {
    const sweep: { geometry: string; tile: number; pinpoints: [number, number][]; size: [number, number]; best: [number, number]; tokens: number }[] = JSON.parse(
      readFileSync(join(root, 'anyres_sweep.json'), 'utf8'),
    );
    expect(sweep.length).toBe(198);
    for (const s of sweep) {
      const [h, w] = s.size;
      expect(selectBestResolution(h, w, s.pinpoints), `${s.geometry} ${h}×${w}`).toEqual(s.best);
      const cfg = parseImageProcessorConfig(
        { image_processor_type: 'LlavaNextImageProcessor', size: { shortest_edge: s.tile }, crop_size: { height: s.tile, width: s.tile }, image_grid_pinpoints: s.pinpoints },
        'sweep',
      );
      expect(anyresTokens(anyresLayout(h, w, cfg), 14).total, `${s.geometry} ${h}×${w}`).toBe(s.tokens);
    }
  });
});

for (const c of NEXT_CASES) {
  describe(`HF transformers parity: ${c.name} (${c.lm}, ${c.layout} layout, ${c.dtype}${c.gqa ? ', GQA' : ''}, ${c.image_size}-px tiles, ${c.grid.join('×')} grid)`, () => {
    let hf: Map<string, RefTensor>;
    let dir: string;
    beforeAll(async () => {
      dir = join(root, c.name);
      hf = (await readRefSafetensors(join(dir, 'hf.safetensors'))).tensors;
    });

    it(`pixel_values [views, 3, ${c.image_size}, ${c.image_size}], base view first, bit for bit`, () => {
      const cfg = processorConfig(join(dir, 'model'), c.layout);
      const px = preprocessAnyres(hfImage(hf), cfg);
      const want = hf.get('pixel_values')!;
      expect(px.shape).toEqual(want.shape);
      expect(px.shape[0]).toBe(1 + c.grid[0] * c.grid[1]);
      expect([px.anyres!.rows, px.anyres!.cols]).toEqual(c.grid);
      expect(Array.from(hf.get('image_sizes')!.data)).toEqual(px.anyres!.imageSize);
      let max = 0;
      for (let i = 0; i < want.data.length; i++) max = Math.max(max, Math.abs(px.data[i] - want.data[i]));
      expect(max).toBe(0);
    });

    it(`the image-token count (unpad by ${c.unpad})`, () => {
      const cfg = processorConfig(join(dir, 'model'), c.layout);
      const img = hfImage(hf);
      const t = anyresTokens(anyresLayout(img.height, img.width, cfg), 14);
      const ids = Array.from(hf.get('input_ids')!.data);
      const imageId = c.lm === 'llama3' ? 128256 : 32000;
      expect(ids.filter((i) => i === imageId).length).toBe(t.total);
      const P = c.image_size / 14;
      if (c.unpad === 'rows') {
        expect(t.cols).toBe(c.grid[1] * P);
        expect(t.rows).toBeLessThan(c.grid[0] * P);
      } else {
        expect(t.rows).toBe(c.grid[0] * P);
        expect(t.cols).toBeLessThan(c.grid[1] * P);
      }
    });

    describe('the model', () => {
      const spec: PromptSpec = { prompt: c.prompt, chat: true };
      let m: Vlm;
      let x: VlmInput;
      let ours: Map<string, HostTensor>;
      let info: { tokens: { image: [number, number]; text: number[] }; attention_last_row_min_head_max: number[]; uniform: number; metrics: Metrics; versions: { transformers: string } };

      beforeAll(async () => {
        info = JSON.parse(readFileSync(join(dir, 'hf.json'), 'utf8'));
        const gpu = await getGpu();
        m = await loadDir(gpu, join(dir, 'model'));
        x = m.prepare(spec, hfImage(hf));
        ours = await dumpActivations(gpu, m, x);
      }, 300_000);

      it('the processor through the model folder: input_ids exactly, pixel_values bit for bit', () => {
        expect(m.family).toBe('llava_next');
        expect(Array.from(ours.get('input_ids')!.data)).toEqual(Array.from(hf.get('input_ids')!.data));
        expect(ours.get('pixel_values')!.shape).toEqual(hf.get('pixel_values')!.shape);
        expect(maxAbs(ours.get('pixel_values')!.data, hf.get('pixel_values')!.data)).toBe(0);
        expect(x.groups.image).toEqual(info.tokens.image);
      });

      it(`every hidden state, every view's tower states, the packed features and the logits within ${TOL} of their scale`, () => {
        compareDump(`${c.name} (transformers ${info.versions.transformers})`, ours, hf, TOL, m.lm.num_hidden_layers);
      });

      it("greedy generation gives HF's 16 tokens", async () => {
        const g = await generate(await getGpu(), m, x, 16, undefined, { stopAtEos: false });
        expect(g.tokens).toEqual(Array.from(hf.get('greedy_tokens')!.data));
      });

      it('the random weights give peaked attention', () => {
        for (const p of info.attention_last_row_min_head_max) expect(p).toBeGreaterThanOrEqual(3 * info.uniform);
      });

      it('analyze metrics match the torch metrics of HF outputs', async () => {
        await compareMetrics(c.name, m, spec, hfImage(hf), { dropBos: false, topk: 5 }, { image: info.tokens.image, text: info.tokens.text }, info.metrics);
      });

    });
  });
}
