/**
 * Self-checks of the PyTorch reference test/reference/llava_ref.py (run through
 * pyref.ts) on tiny checkpoints from weights-tools/make-tiny.ts.
 *
 * The expected values are recomputed here in plain TypeScript loops (f64 accumulation)
 * from the checkpoint tensors, so each check is a second, independent implementation of
 * a piece of the model: shapes vs config, the image-token expansion and splice, the
 * final RMSNorm, lm_head, greedy decoding, and one full vision layer / decoder layer
 * (CLIP embeddings + pre_layrnorm, LayerNorm attention with biases, quick_gelu; RMSNorm,
 * RoPE rotate-half, GQA, causal softmax, SwiGLU), plus the projector.
 *
 * Tolerances: the script computes in float32 and these loops in float64, on identical
 * weights (f16 checkpoints are upcast exactly on both sides), so only f32 rounding
 * separates them: relErr ≤ 1e-5 for a single op chain, 2e-5 for a whole layer (a few
 * hundred f32 roundings on values of size ~1). Splices and copies are compared exactly.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/io/safetensors-write.ts';
import { randn, relErr } from '../helpers/gpu.ts';
import { add, attention, gelu, layerNorm, linear, llamaDecoderLayer, loadCheckpoint, makeTiny, quickGelu, rmsNorm, rows, weight as W, type Weights } from './host-math.ts';
import { runLlavaReference, runLlavaReferenceFull, type RefTensor } from './pyref.ts';

const IMAGE_TOKEN = 32000;
// "USER: <image>\nWhat is this? ASSISTANT:" as LLaMA ids (exact ids do not matter here)
const PROMPT = [1, 3148, 1001, 29901, 29871, IMAGE_TOKEN, 29871, 13, 5618, 338, 445, 29973, 319, 1799, 9047, 13566, 29901];
const NEW_TOKENS = 4;

// ---------------------------------------------------------------------------------------

interface Case {
  name: string;
  makeTiny: string[];
  /** Pass the prompt with the image token already repeated once per feature. */
  preExpanded: boolean;
}

const CASES: Case[] = [
  { name: 'f32, one file, MHA, image token expanded by the script', makeTiny: [], preExpanded: false },
  { name: 'f16, 2 shards, GQA (4 heads / 2 KV heads), prompt already expanded', makeTiny: ['--dtype', 'f16', '--shards', '2', '--gqa'], preExpanded: true },
];

describe('llava_ref.py (PyTorch reference) self-checks — needs /usr/bin/python3 with torch, numpy', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'llava-ref-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [ci, c] of CASES.entries()) {
    describe(c.name, () => {
      const dir = join(tmp, `ckpt${ci}`);
      let cfg: any;
      let w: Weights;
      let ref: Map<string, RefTensor>;
      let meta: Record<string, string>;
      let nImg: number;
      let expandedIds: number[];
      const pixels = randn(3 * 42 * 42, 100 + ci, 2);

      beforeAll(async () => {
        makeTiny(dir, c.makeTiny);
        cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
        w = await loadCheckpoint(dir);
        const vc = cfg.vision_config;
        nImg = (vc.image_size / vc.patch_size) ** 2 + (cfg.vision_feature_select_strategy === 'full' ? 1 : 0);
        const at = PROMPT.indexOf(IMAGE_TOKEN);
        expandedIds = [...PROMPT.slice(0, at), ...Array<number>(nImg).fill(IMAGE_TOKEN), ...PROMPT.slice(at + 1)];
        const res = await runLlavaReferenceFull({
          model: dir,
          pixelValues: pixels,
          pixelShape: [3, vc.image_size, vc.image_size],
          inputIds: c.preExpanded ? expandedIds : PROMPT,
          maxNewTokens: NEW_TOKENS,
          withAttentions: true,
        });
        ref = res.tensors;
        meta = res.metadata;
      });

      const T = (name: string) => {
        const t = ref.get(name);
        if (!t) throw new Error(`reference output has no ${name}`);
        return t;
      };

      it('(a) writes every output with the shape the config implies', () => {
        const vc = cfg.vision_config;
        const tc = cfg.text_config;
        const seq = expandedIds.length;
        const want = new Map<string, number[]>([
          ['input_ids', [seq]],
          ['pixel_values', [3, vc.image_size, vc.image_size]],
          ['image_features', [nImg, tc.hidden_size]],
          ['residual_final', [seq, tc.hidden_size]],
          ['logits', [seq, tc.vocab_size]],
          ['greedy_tokens', [NEW_TOKENS]],
        ]);
        for (let k = 0; k <= vc.num_hidden_layers; k++) want.set(`vision_hidden_states.${k}`, [1 + (vc.image_size / vc.patch_size) ** 2, vc.hidden_size]);
        for (let l = 0; l <= tc.num_hidden_layers; l++) want.set(`hidden_states.${l}`, [seq, tc.hidden_size]);
        for (let l = 0; l < tc.num_hidden_layers; l++) {
          want.set(`attentions.${l}`, [tc.num_attention_heads, seq, seq]);
          want.set(`attn_input_normed.${l}`, [seq, tc.hidden_size]);
        }
        expect(new Set(ref.keys())).toEqual(new Set(want.keys()));
        for (const [name, shape] of want) expect(T(name).shape, name).toEqual(shape);
        expect(T('input_ids').data).toBeInstanceOf(Int32Array);
        expect(T('greedy_tokens').data).toBeInstanceOf(Int32Array);
        for (const [name, t] of ref) expect(t.data.every(Number.isFinite), `${name} finite`).toBe(true);
        expect(Array.from(T('pixel_values').data)).toEqual(Array.from(pixels));
        expect(meta.expanded).toBe(c.preExpanded ? '0' : '1');
      });

      it('(b) hidden_states.L is RMSNorm(residual_final) with the final norm weight', () => {
        const tc = cfg.text_config;
        const L = tc.num_hidden_layers;
        const seq = expandedIds.length;
        const want = rmsNorm(T('residual_final').data, seq, tc.hidden_size, W(w, 'language_model.model.norm.weight'), tc.rms_norm_eps);
        expect(relErr(T(`hidden_states.${L}`).data, want)).toBeLessThanOrEqual(1e-5);
        // and the un-normed residual really differs from it (the convention is visible)
        expect(relErr(T(`hidden_states.${L}`).data, T('residual_final').data)).toBeGreaterThan(1e-2);
      });

      it('(c) logits rows equal hidden_states.L · lm_headᵀ', () => {
        const tc = cfg.text_config;
        const seq = expandedIds.length;
        const pick = [0, PROMPT.indexOf(IMAGE_TOKEN) + 1, seq - 1];
        const h = rows(T(`hidden_states.${tc.num_hidden_layers}`), pick);
        const want = linear(h, pick.length, tc.hidden_size, W(w, 'language_model.lm_head.weight'), tc.vocab_size);
        expect(relErr(rows(T('logits'), pick), want)).toBeLessThanOrEqual(1e-5);
      });

      it('(d) expands the image token and splices the image features into hidden_states.0 at its positions', () => {
        const tc = cfg.text_config;
        const d = tc.hidden_size;
        expect(Array.from(T('input_ids').data)).toEqual(expandedIds);
        const positions = expandedIds.flatMap((t, i) => (t === IMAGE_TOKEN ? [i] : []));
        expect(positions.length).toBe(nImg);
        expect(meta.image_start).toBe(String(positions[0]));
        expect(meta.n_image_tokens).toBe(String(nImg));
        const h0 = T('hidden_states.0').data;
        const feats = T('image_features').data;
        positions.forEach((p, k) => expect(Array.from(h0.subarray(p * d, (p + 1) * d)), `position ${p}`).toEqual(Array.from(feats.subarray(k * d, (k + 1) * d))));
        // every other position holds its token's embedding row
        const emb = W(w, 'language_model.model.embed_tokens.weight');
        expandedIds.forEach((t, p) => {
          if (t !== IMAGE_TOKEN) expect(Array.from(h0.subarray(p * d, (p + 1) * d)), `text position ${p}`).toEqual(Array.from(emb.subarray(t * d, (t + 1) * d)));
        });
      });

      it('(e) the first greedy token is the argmax of the last logits row; KV-cached decode = full recompute', async () => {
        const tc = cfg.text_config;
        const lg = T('logits');
        const last = lg.data.subarray((lg.shape[0] - 1) * tc.vocab_size);
        let best = 0;
        for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i;
        expect(T('greedy_tokens').data[0]).toBe(best);
        if (ci === CASES.length - 1) {
          const vc = cfg.vision_config;
          const full = await runLlavaReferenceFull({
            model: dir,
            pixelValues: pixels,
            pixelShape: [3, vc.image_size, vc.image_size],
            inputIds: PROMPT,
            maxNewTokens: NEW_TOKENS,
            noKvCache: true,
          });
          expect(Array.from(full.tensors.get('greedy_tokens')!.data)).toEqual(Array.from(T('greedy_tokens').data));
        }
      });

      it('vision: embeddings + pre_layrnorm = vision_hidden_states.0; encoder layer 0; projector on layer −2 without CLS', () => {
        const vc = cfg.vision_config;
        const p = 'vision_tower.vision_model.';
        const d = vc.hidden_size;
        const P = vc.patch_size;
        const g = vc.image_size / P;
        const n = 1 + g * g;
        const eps = vc.layer_norm_eps ?? 1e-5;
        // patch conv (no bias), CLS first, position embedding rows 0..n-1
        const conv = W(w, p + 'embeddings.patch_embedding.weight');
        const cls = W(w, p + 'embeddings.class_embedding');
        const pos = W(w, p + 'embeddings.position_embedding.weight');
        const x = new Float64Array(n * d);
        for (let o = 0; o < d; o++) x[o] = cls[o] + pos[o];
        const S = vc.image_size;
        for (let py = 0; py < g; py++) {
          for (let px = 0; px < g; px++) {
            const r = 1 + py * g + px;
            for (let o = 0; o < d; o++) {
              let s = 0;
              for (let ch = 0; ch < 3; ch++) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) s += conv[((o * 3 + ch) * P + i) * P + j] * pixels[(ch * S + py * P + i) * S + px * P + j];
              x[r * d + o] = s + pos[r * d + o];
            }
          }
        }
        const h0 = layerNorm(x, n, d, W(w, p + 'pre_layrnorm.weight'), W(w, p + 'pre_layrnorm.bias'), eps);
        expect(relErr(T('vision_hidden_states.0').data, h0)).toBeLessThanOrEqual(1e-5);

        // encoder layer 0 from the reference's own input
        const lp = p + 'encoder.layers.0.';
        const xin = T('vision_hidden_states.0').data;
        const a = layerNorm(xin, n, d, W(w, lp + 'layer_norm1.weight'), W(w, lp + 'layer_norm1.bias'), eps);
        const proj = (name: string, inp: ArrayLike<number>, k: number, m: number) => linear(inp, n, k, W(w, lp + name + '.weight'), m, W(w, lp + name + '.bias'));
        const nh = vc.num_attention_heads;
        const { out } = attention(proj('self_attn.q_proj', a, d, d), proj('self_attn.k_proj', a, d, d), proj('self_attn.v_proj', a, d, d), n, nh, nh, d / nh, false);
        const x1 = add(xin, proj('self_attn.out_proj', out, d, d));
        const b = layerNorm(x1, n, d, W(w, lp + 'layer_norm2.weight'), W(w, lp + 'layer_norm2.bias'), eps);
        const f = proj('mlp.fc1', b, d, vc.intermediate_size).map(quickGelu); // hidden_act default quick_gelu
        const x2 = add(x1, proj('mlp.fc2', f, vc.intermediate_size, d));
        expect(relErr(T('vision_hidden_states.1').data, x2)).toBeLessThanOrEqual(2e-5);

        // projector: Linear → GELU(erf) → Linear on hidden state Lv−1 (index −2), CLS dropped
        const tc = cfg.text_config;
        const sel = T(`vision_hidden_states.${vc.num_hidden_layers - 1}`).data.subarray(d);
        const m = n - 1;
        const y1 = linear(sel, m, d, W(w, 'multi_modal_projector.linear_1.weight'), tc.hidden_size, W(w, 'multi_modal_projector.linear_1.bias')).map(gelu);
        const y2 = linear(y1, m, tc.hidden_size, W(w, 'multi_modal_projector.linear_2.weight'), tc.hidden_size, W(w, 'multi_modal_projector.linear_2.bias'));
        expect(relErr(T('image_features').data, y2)).toBeLessThanOrEqual(1e-5);
      });

      it('language model: decoder layer 0 (RMSNorm, RoPE, GQA, causal softmax, SwiGLU) = hidden_states.1, attentions.0', () => {
        const tc = cfg.text_config;
        const n = expandedIds.length;
        const nh = tc.num_attention_heads;
        const { normed, maps, out } = llamaDecoderLayer(w, 'language_model.model.layers.0.', T('hidden_states.0').data, n, tc);
        expect(relErr(T('attn_input_normed.0').data, normed)).toBeLessThanOrEqual(1e-5);
        expect(relErr(T('attentions.0').data, maps)).toBeLessThanOrEqual(1e-5);
        expect(relErr(T('hidden_states.1').data, out)).toBeLessThanOrEqual(2e-5);
        // attention maps are causal rows summing to 1
        const A = T('attentions.1').data;
        for (let h = 0; h < nh; h++) {
          for (let i = 0; i < n; i++) {
            let s = 0;
            for (let j = 0; j < n; j++) {
              const p = A[(h * n + i) * n + j];
              if (j > i) expect(p).toBe(0);
              s += p;
            }
            expect(Math.abs(s - 1)).toBeLessThan(1e-5);
          }
        }
      });
    });
  }
  describe('config variants: strategy "full", vision_feature_layer −1, tied embeddings; projector GELU is erf', () => {
    // Weight surgery on a tiny f32 checkpoint: linear_2 = identity (bias 0) and linear_1
    // scaled ×12, so image_features = GELU(pre-activations spanning about ±5) element by
    // element; the tanh approximation differs there by up to ~5e-4, which the check below
    // must (and is asserted to) be able to see. lm_head is dropped and
    // text_config.tie_word_embeddings set, so logits must come from embed_tokens.
    const dir = join(tmp, 'surgery');
    let cfg: any;
    let w: Weights;
    let ref: Map<string, RefTensor>;
    const pixels = randn(3 * 42 * 42, 7, 2);

    beforeAll(async () => {
      const src = join(tmp, 'surgery-src');
      makeTiny(src, []);
      const orig = await loadCheckpoint(src);
      cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
      cfg.vision_feature_select_strategy = 'full';
      cfg.vision_feature_layer = -1;
      cfg.text_config.tie_word_embeddings = true;
      const d = cfg.text_config.hidden_size;
      w = new Map(orig);
      w.delete('language_model.lm_head.weight');
      const l1 = W(orig, 'multi_modal_projector.linear_1.weight').map((v) => v * 12);
      const eye = new Float32Array(d * d);
      for (let i = 0; i < d; i++) eye[i * d + i] = 1;
      w.set('multi_modal_projector.linear_1.weight', { data: l1, shape: [d, cfg.vision_config.hidden_size] });
      w.set('multi_modal_projector.linear_2.weight', { data: eye, shape: [d, d] });
      w.set('multi_modal_projector.linear_2.bias', { data: new Float32Array(d), shape: [d] });
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
      const specs = [...w].map(([name, t]) => ({ name, shape: t.shape, dtype: 'F32' as const }));
      await writeSafetensors(join(dir, 'model.safetensors'), specs, (t) => {
        const a = w.get(t.name)!.data;
        return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      });
      const vc = cfg.vision_config;
      ref = await runLlavaReference({ model: dir, pixelValues: pixels, pixelShape: [3, vc.image_size, vc.image_size], inputIds: PROMPT, maxNewTokens: 1 });
    });

    it('keeps CLS (1 + patches image tokens) and takes the last vision hidden state', () => {
      const vc = cfg.vision_config;
      const n = 1 + (vc.image_size / vc.patch_size) ** 2;
      const ids = Array.from(ref.get('input_ids')!.data);
      expect(ids.filter((t) => t === IMAGE_TOKEN).length).toBe(n);
      expect(ref.get('image_features')!.shape).toEqual([n, cfg.text_config.hidden_size]);
      const d = cfg.text_config.hidden_size;
      const x = ref.get(`vision_hidden_states.${vc.num_hidden_layers}`)!.data;
      const pre = linear(x, n, vc.hidden_size, W(w, 'multi_modal_projector.linear_1.weight'), d, W(w, 'multi_modal_projector.linear_1.bias'));
      let span = 0;
      for (const v of pre) span = Math.max(span, Math.abs(v));
      expect(span).toBeGreaterThan(2.5); // the range where erf and tanh GELU differ most
      const got = ref.get('image_features')!.data;
      expect(relErr(got, pre.map(gelu))).toBeLessThanOrEqual(1e-5);
      const tanhGelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      expect(relErr(got, pre.map(tanhGelu))).toBeGreaterThan(2e-5);
    });

    it('tied embeddings: logits = hidden_states.L · embed_tokensᵀ', () => {
      const tc = cfg.text_config;
      const seq = ref.get('input_ids')!.shape[0];
      const pick = [1, seq - 1];
      const h = rows(ref.get(`hidden_states.${tc.num_hidden_layers}`)!, pick);
      const want = linear(h, pick.length, tc.hidden_size, W(w, 'language_model.model.embed_tokens.weight'), tc.vocab_size);
      expect(relErr(rows(ref.get('logits')!, pick), want)).toBeLessThanOrEqual(1e-5);
    });
  });
});
