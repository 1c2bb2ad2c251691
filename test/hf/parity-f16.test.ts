/**
 * `--precision f16` against HF transformers in fp16 (`from_pretrained(dtype=float16)`, i.e.
 * model.half(), eager attention, on the CPU — torch runs every op of these models in half
 * there, the patch conv included). Tiny LLaVA-1.5 and InstructBLIP checkpoints written by
 * transformers in f16 (hf_parity.py), each run by HF twice — in fp16 and in float32 — and by
 * phaselens at precision f16 and f32.
 *
 * Two fp16 evaluations do not round at the same places: HF rounds every op's output (norms,
 * attention scores and probabilities, RoPE, silu·up), phaselens rounds the matmuls' inputs
 * and outputs and the residual stream (src/ops/precision.ts), and even where both round, f32
 * sums in different orders land on different sides of a rounding boundary. Through the
 * random models' depth that noise grows (at the logits it is 100× an f16 step on
 * InstructBLIP), so no bound from f16's eps alone fits every tensor. The fp16 noise of each
 * tensor is measured instead, in the same run: spread(t) = rel(HF fp16, HF f32), rel the
 * max |Δ| / max |reference| of the f32 parity test. Per tensor:
 *  - as much f16 error as HF's: rel(ours f16, HF f32) within [spread / 8, 1.5 · spread] on
 *    every tensor past the first block's output (measured 0.38–1.2 × spread). The lower end
 *    fails an f32 run (rel ~1e-6: precision not applied), the upper end a coarser
 *    rounding (bf16's step is 8× f16's) or a misplaced one;
 *  - parity: rel(ours f16, HF fp16) ≤ 2 · spread(t) + 2⁻¹¹ — the triangle inequality through
 *    HF f32 with the bound above (≤ 1.5 · spread + spread), plus one f16 step of the
 *    tensor's largest value for tensors HF rounds and we do not; measured ≤ 0.8 of it.
 *  - the f32 parity bound rejects it: rel(ours f16, HF f32) > 1e-4 at the logits.
 *  - greedy tokens: HF fp16's, until a step where HF's two best logits lie within the logits'
 *    parity bound of each other (a near tie either side may take); from there the
 *    continuations differ and are not compared. Measured: all 16 equal.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/models/generate.ts';
import type { PromptSpec, Vlm, VlmInput } from '../../src/models/vlm.ts';
import { setMatmulPrecision } from '../../src/ops/precision.ts';
import { dumpActivations, type HostTensor } from '../../src/probes/dump.ts';
import { getGpu, relErr } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';
import { readRefSafetensors, type RefTensor } from '../reference/pyref.ts';
import { TOL } from './compare.ts';
import { hfReference, type HfCase } from './hf-reference.ts';

const NEW_TOKENS = 16;
const U16 = 2 ** -11;
const base = { new_tokens: NEW_TOKENS, topk: 5, dtype: 'float16' as const, image_size: 42, resize: 42 };
const FAMILIES: { name: string; c: HfCase; spec: PromptSpec; firstBlock: RegExp }[] = [
  {
    name: 'llava-f16',
    c: { ...base, name: '', family: 'llava', layout: 'transformers5', gqa: false, seed: 11, image: 'test/fixtures/images/000000039769.png', prompt: 'What is shown in this image?' },
    spec: { prompt: 'What is shown in this image?', chat: true },
    firstBlock: /^vision_hidden_states\.0$/,
  },
  {
    name: 'instructblip-f16',
    c: { ...base, name: '', family: 'instructblip', layout: 'hub', gqa: true, seed: 12, image: 'test/fixtures/images/000000011813.jpg', prompt: 'What is unusual about this image?' },
    spec: { prompt: 'What is unusual about this image?' },
    firstBlock: /^(vision_hidden_states|qformer_hidden_states)\.0$/,
  },
];
// each checkpoint twice, the same seed: HF in fp16 (NAME) and in float32 (NAME-hf32)
const CASES: HfCase[] = FAMILIES.flatMap((f) => [{ ...f.c, name: f.name, compute: 'float16' as const }, { ...f.c, name: `${f.name}-hf32` }]);

let root: string;
beforeAll(async () => {
  root = await hfReference(CASES, 'f16');
}, 900_000);

afterAll(async () => setMatmulPrecision(await getGpu(), 'f32'));

/** The dump's tensors that HF also has, with each one's rel against HF fp16 and f32. */
function rows(ours: Map<string, HostTensor>, hf16: Map<string, RefTensor>, hf32: Map<string, RefTensor>) {
  return [...ours.entries()]
    .filter(([n]) => !n.endsWith('input_ids') && n !== 'pixel_values')
    .map(([name, t]) => {
      expect(t.shape, name).toEqual(hf16.get(name)!.shape);
      return { name, vs16: relErr(t.data, hf16.get(name)!.data), vs32: relErr(t.data, hf32.get(name)!.data), spread: relErr(hf16.get(name)!.data, hf32.get(name)!.data) };
    });
}

for (const f of FAMILIES) {
  describe(`--precision f16 vs HF transformers fp16: ${f.name} (${f.c.family}, f16 checkpoint)`, () => {
    let m: Vlm;
    let x: VlmInput;
    let hf16: Map<string, RefTensor>;
    let hf32: Map<string, RefTensor>;
    let r: ReturnType<typeof rows>;

    beforeAll(async () => {
      hf16 = (await readRefSafetensors(join(root, f.name, 'hf.safetensors'))).tensors;
      hf32 = (await readRefSafetensors(join(root, `${f.name}-hf32`, 'hf.safetensors'))).tensors;
      const [height, width] = hf16.get('image_rgb')!.shape;
      const gpu = await getGpu();
      m = await loadDir(gpu, join(root, f.name, 'model'), { precision: 'f16' });
      x = m.prepare(f.spec, { width, height, data: hf16.get('image_rgb')!.data as Uint8Array });
      r = rows(await dumpActivations(gpu, m, x), hf16, hf32);
      const info = JSON.parse(readFileSync(join(root, f.name, 'hf.json'), 'utf8'));
      console.log(`${f.name} (torch ${info.versions.torch}, transformers ${info.versions.transformers}): rel vs HF fp16 / vs HF f32 / HF's spread\n  ${r.map((v) => `${v.name.padEnd(26)} ${v.vs16.toExponential(2)} ${v.vs32.toExponential(2)} ${v.spread.toExponential(2)}`).join('\n  ')}`);
    }, 900_000); // the first model compiles every precision-f16 pipeline it needs

    it('the model loaded at precision f16 with f16 weights', () => {
      expect(m.precision).toBe('f16');
      expect(m.weightDtypes).toEqual(['f16']);
      expect(r.length).toBeGreaterThan(2 * m.lm.num_hidden_layers);
    });

    it('as much f16 error as HF fp16 has: rel(ours, HF f32) within [spread / 8, 1.5 · spread] past the first block', () => {
      let past = false;
      for (const v of r) {
        if (f.firstBlock.test(v.name)) continue;
        past = true;
        expect(v.vs32, v.name).toBeGreaterThanOrEqual(v.spread / 8);
        expect(v.vs32, v.name).toBeLessThanOrEqual(1.5 * v.spread);
      }
      expect(past).toBe(true);
    });

    it('every hidden state, the towers\' outputs and the logits within 2 · spread + 2⁻¹¹ of HF fp16', () => {
      for (const v of r) expect(v.vs16, v.name).toBeLessThanOrEqual(2 * v.spread + U16);
    });

    it(`the f32 parity bound (${TOL}) rejects it: the f16 rounding is in effect`, () => {
      expect(r.find((v) => v.name === 'logits')!.vs32).toBeGreaterThan(TOL);
    });

    it(`greedy generation gives HF fp16's tokens, up to a near tie`, async () => {
      const g = await generate(await getGpu(), m, x, NEW_TOKENS, undefined, { stopAtEos: false });
      const want = Array.from(hf16.get('greedy_tokens')!.data);
      const scores = hf16.get('greedy_scores')!;
      const vocab = scores.shape[1];
      const logits = r.find((v) => v.name === 'logits')!;
      const tol = 2 * logits.spread + U16;
      expect(g.tokens.length).toBe(NEW_TOKENS);
      const first = g.tokens.findIndex((t, i) => t !== want[i]);
      if (first >= 0) {
        const row = scores.data.subarray(first * vocab, (first + 1) * vocab);
        const scale = Math.max(...Array.from(row, Math.abs));
        expect(Math.abs(row[want[first]] - row[g.tokens[first]]), `step ${first}: ${g.tokens[first]} instead of ${want[first]}`).toBeLessThanOrEqual(tol * scale);
      }
      console.log(`${f.name}: greedy tokens ${first < 0 ? `all ${NEW_TOKENS} equal` : `equal up to step ${first} (a near tie)`}`);
    });
  });
}
