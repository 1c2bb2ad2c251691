/**
 * Self-checks of the PyTorch reference test/reference/instructblip_ref.py (run through
 * pyref.ts) on tiny instructblip checkpoints from weights-tools/make-tiny.ts.
 *
 * The expected values are recomputed here in plain TypeScript loops (f64 accumulation)
 * from the checkpoint tensors, each from the reference's own input to that piece, so every
 * check is a second, independent implementation of one piece: shapes vs config; the EVA
 * embeddings (patch conv with bias, CLS, positions, no pre-layernorm) and one encoder
 * layer (fused qkv with its [q_bias, 0, v_bias] bias, erf GELU); post_layernorm; the
 * Q-Former embeddings LayerNorm, layer 0 (self-attention, cross-attention to the image,
 * the separate query / text feed-forwards) and layer 1 (no cross-attention);
 * language_projection; the splice of the projected queries into hidden_states.0; decoder
 * layer 0; the final norm, lm_head and greedy decoding.
 *
 * make-tiny's weights are normal(0, 0.02), which leaves attention almost uniform and GELU
 * almost linear; a third, "sharpened" checkpoint (every projection matrix ×20) puts
 * pre-activations at O(1–5) and makes the softmaxes peaky (cross-attention max > 0.5),
 * and the checks assert there that they can tell erf GELU from the tanh approximation.
 *
 * Tolerances: the script computes in float32 and these loops in float64 on identical
 * weights (f16 is upcast exactly on both sides), so only f32 rounding separates them:
 * relErr (max abs error / max |expected|) ≤ 1e-5 for a LayerNorm / RMSNorm / linear /
 * embedding chain, 2e-5 for a whole layer (a few hundred f32 roundings on values of
 * size ~1), as in llava_ref.test.ts; the worst measured is 8e-7 (the 588-term patch
 * conv sums), also in the sharpened case. There, replacing erf GELU by the tanh
 * approximation moves a layer by 1.0e-4 (vision) / 1.6e-4 (Q-Former), so that variant is
 * asserted to exceed 2× the layer tolerance. Copies and splices are compared exactly.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/io/safetensors-write.ts';
import { randn, relErr } from '../helpers/data.ts';
import { add, attention, gelu, layerNorm, linear, llamaDecoderLayer, loadCheckpoint, makeTiny, rmsNorm, rows, weight, type Mat, type Weights } from './host-math.ts';
import { runInstructBlipReferenceFull, type RefTensor } from './pyref.ts';

const IMAGE_TOKEN = 32000;
// "What is in the image?" as LLaMA ids after the tokenizer's BOS — `</s>` = 2 for Vicuna
// InstructBLIP (tokenizer_config.json; make-tiny copies that) — and the instruction for the
// Q-Former as BERT ids "[CLS] what is in the image ? [SEP]" (exact ids do not matter here)
const BOS = 2;
const PROMPT = [BOS, 1724, 338, 297, 278, 1967, 29973];
const QFORMER_IDS = [101, 2054, 2003, 1999, 1996, 3746, 1029, 102];
const NEW_TOKENS = 4;
const TOL_OP = 1e-5;
const TOL_LAYER = 2e-5;

const tanhGelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

// ---------------------------------------------------------------------------------------
// InstructBLIP pieces as plain loops (row-major flat matrices)

interface VisionCfg {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  layer_norm_eps: number;
  image_size: number;
  patch_size: number;
}

interface QFormerCfg {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  layer_norm_eps: number;
  cross_attention_frequency: number;
}

/** InstructBlipVisionEmbeddings: conv (with bias) patches after CLS, plus position rows. */
function evaEmbeddings(w: Weights, pixels: Float32Array, vc: VisionCfg): Mat {
  const p = 'vision_model.embeddings.';
  const d = vc.hidden_size;
  const P = vc.patch_size;
  const S = vc.image_size;
  const g = S / P;
  const conv = weight(w, p + 'patch_embedding.weight');
  const bias = weight(w, p + 'patch_embedding.bias');
  const cls = weight(w, p + 'class_embedding');
  const pos = weight(w, p + 'position_embedding');
  const x = new Float64Array((1 + g * g) * d);
  for (let o = 0; o < d; o++) x[o] = cls[o] + pos[o];
  for (let py = 0; py < g; py++) {
    for (let px = 0; px < g; px++) {
      const r = 1 + py * g + px;
      for (let o = 0; o < d; o++) {
        let s = bias[o];
        for (let ch = 0; ch < 3; ch++) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) s += conv[((o * 3 + ch) * P + i) * P + j] * pixels[(ch * S + py * P + i) * S + px * P + j];
        x[r * d + o] = s + pos[r * d + o];
      }
    }
  }
  return x;
}

/** InstructBlipEncoderLayer: pre-LN, fused qkv → (3, heads, hd) split, projection; pre-LN GELU MLP. */
function evaLayer(w: Weights, lp: string, x: ArrayLike<number>, n: number, vc: VisionCfg, act: (v: number) => number = gelu): Mat {
  const d = vc.hidden_size;
  const nh = vc.num_attention_heads;
  const W = (name: string) => weight(w, lp + name);
  const eps = vc.layer_norm_eps;
  const a = layerNorm(x, n, d, W('layer_norm1.weight'), W('layer_norm1.bias'), eps);
  const qkv = linear(a, n, d, W('self_attn.qkv.weight'), 3 * d, W('self_attn.qkv.bias'));
  // output feature s·d + h·hd + e is part s (q, k, v) of head h
  const part = (s: number) => {
    const y = new Float64Array(n * d);
    for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) y[i * d + c] = qkv[i * 3 * d + s * d + c];
    return y;
  };
  const { out } = attention(part(0), part(1), part(2), n, nh, nh, d / nh, false);
  const x1 = add(x, linear(out, n, d, W('self_attn.projection.weight'), d, W('self_attn.projection.bias')));
  const b = layerNorm(x1, n, d, W('layer_norm2.weight'), W('layer_norm2.bias'), eps);
  const I = vc.intermediate_size;
  const f = linear(b, n, d, W('mlp.fc1.weight'), I, W('mlp.fc1.bias')).map(act);
  return add(x1, linear(f, n, I, W('mlp.fc2.weight'), d, W('mlp.fc2.bias')));
}

/** InstructBlipQFormerAttention: LN(dense(MHA(x [n, dq], kv [m, dkv])) + x); returns the maps too. */
function bertAttention(w: Weights, prefix: string, x: ArrayLike<number>, n: number, kv: ArrayLike<number>, m: number, dkv: number, qc: QFormerCfg) {
  const dq = qc.hidden_size;
  const nh = qc.num_attention_heads;
  const W = (name: string) => weight(w, `${prefix}.${name}`);
  const q = linear(x, n, dq, W('attention.query.weight'), dq, W('attention.query.bias'));
  const k = linear(kv, m, dkv, W('attention.key.weight'), dq, W('attention.key.bias'));
  const v = linear(kv, m, dkv, W('attention.value.weight'), dq, W('attention.value.bias'));
  const { out, maps } = attention(q, k, v, n, nh, nh, dq / nh, false, m);
  const y = add(linear(out, n, dq, W('output.dense.weight'), dq, W('output.dense.bias')), x);
  return { out: layerNorm(y, n, dq, W('output.LayerNorm.weight'), W('output.LayerNorm.bias'), qc.layer_norm_eps), maps };
}

/** Intermediate + Output: LN(dense(act(dense(x))) + x) with the `inter` / `output` modules of layer lp. */
function bertFfn(w: Weights, lp: string, inter: string, output: string, x: ArrayLike<number>, n: number, qc: QFormerCfg, act: (v: number) => number): Mat {
  const dq = qc.hidden_size;
  const I = qc.intermediate_size;
  const mid = linear(x, n, dq, weight(w, `${lp}${inter}.dense.weight`), I, weight(w, `${lp}${inter}.dense.bias`)).map(act);
  const y = add(linear(mid, n, I, weight(w, `${lp}${output}.dense.weight`), dq, weight(w, `${lp}${output}.dense.bias`)), x);
  return layerNorm(y, n, dq, weight(w, `${lp}${output}.LayerNorm.weight`), weight(w, `${lp}${output}.LayerNorm.bias`), qc.layer_norm_eps);
}

/** InstructBlipQFormerLayer i on [Q + Tq, dq]; image [m, dkv]. Returns the output and the cross-attention maps (if any). */
function qformerLayer(w: Weights, i: number, x: ArrayLike<number>, nq: number, nt: number, image: ArrayLike<number>, m: number, dkv: number, qc: QFormerCfg, act: (v: number) => number = gelu) {
  const lp = `qformer.encoder.layer.${i}.`;
  const dq = qc.hidden_size;
  const n = nq + nt;
  const a = bertAttention(w, lp + 'attention', x, n, x, n, dq, qc).out;
  let qa: ArrayLike<number> = a.subarray(0, nq * dq);
  let cross: Mat | undefined;
  if (i % qc.cross_attention_frequency === 0) {
    const c = bertAttention(w, lp + 'crossattention', qa, nq, image, m, dkv, qc);
    qa = c.out;
    cross = c.maps;
  }
  const out = new Float64Array(n * dq);
  out.set(bertFfn(w, lp, 'intermediate_query', 'output_query', qa, nq, qc, act));
  if (nt > 0) out.set(bertFfn(w, lp, 'intermediate', 'output', a.subarray(nq * dq), nt, qc, act), nq * dq);
  return { out, cross };
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

// ---------------------------------------------------------------------------------------

interface Case {
  name: string;
  makeTiny: string[];
  /** Pass the prompt with the Q image tokens already in front. */
  placed: boolean;
  /** Rewrite the checkpoint with every projection matrix ×20 (see the header). */
  sharpen: boolean;
  /** Also compare KV-cached greedy decoding with full recomputation. */
  checkNoCache: boolean;
}

const CASES: Case[] = [
  { name: 'f32, one file, image tokens prepended by the script', makeTiny: [], placed: false, sharpen: false, checkNoCache: false },
  { name: 'f16, 2 shards, GQA (4 heads / 2 KV heads), image tokens already placed', makeTiny: ['--dtype', 'f16', '--shards', '2', '--gqa'], placed: true, sharpen: false, checkNoCache: true },
  { name: 'f32, sharpened (projections ×20): GELU nonlinear, peaky softmax', makeTiny: [], placed: false, sharpen: true, checkNoCache: false },
];

const SHARPEN = /\.(qkv|projection|fc1|fc2|query|key|value|dense|q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$|^language_projection\.weight$/;

/** Copies a tiny f32 checkpoint with every SHARPEN matrix multiplied by 20. */
async function writeSharpened(src: string, dst: string): Promise<void> {
  const w = await loadCheckpoint(src);
  for (const [name, t] of w) if (SHARPEN.test(name)) w.set(name, { data: t.data.map((v) => v * 20), shape: t.shape });
  mkdirSync(dst, { recursive: true });
  // config, generation config and tokenizer files (the tokenizer names BOS) as they are
  for (const f of readdirSync(src)) if (f.endsWith('.json')) copyFileSync(join(src, f), join(dst, f));
  const specs = [...w].map(([name, t]) => ({ name, shape: t.shape, dtype: 'F32' as const }));
  await writeSafetensors(join(dst, 'model.safetensors'), specs, (t) => {
    const a = w.get(t.name)!.data;
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  });
}

describe('instructblip_ref.py (PyTorch reference) self-checks — needs /usr/bin/python3 with torch, numpy', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'instructblip-ref-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [ci, c] of CASES.entries()) {
    describe(c.name, () => {
      const dir = join(tmp, `ckpt${ci}`);
      let cfg: any;
      let vc: VisionCfg;
      let qc: QFormerCfg;
      let w: Weights;
      let ref: Map<string, RefTensor>;
      let meta: Record<string, string>;
      let nq: number;
      let placedIds: number[];
      const pixels = randn(3 * 42 * 42, 200 + ci, 2);

      beforeAll(async () => {
        if (c.sharpen) {
          makeTiny(dir + '-src', c.makeTiny, 'instructblip');
          await writeSharpened(dir + '-src', dir);
        } else {
          makeTiny(dir, c.makeTiny, 'instructblip');
        }
        cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
        vc = cfg.vision_config;
        qc = cfg.qformer_config;
        w = await loadCheckpoint(dir);
        nq = cfg.num_query_tokens;
        placedIds = [...Array<number>(nq).fill(IMAGE_TOKEN), ...PROMPT];
        const res = await runInstructBlipReferenceFull({
          model: dir,
          pixelValues: pixels,
          pixelShape: [3, vc.image_size, vc.image_size],
          inputIds: c.placed ? placedIds : PROMPT,
          qformerInputIds: QFORMER_IDS,
          maxNewTokens: NEW_TOKENS,
        });
        ref = res.tensors;
        meta = res.metadata;
      });

      const T = (name: string) => {
        const t = ref.get(name);
        if (!t) throw new Error(`reference output has no ${name}`);
        return t;
      };
      const nv = () => 1 + (vc.image_size / vc.patch_size) ** 2;

      it('(a) writes every output with the shape the config implies; inputs and metadata', () => {
        const tc = cfg.text_config;
        const seq = placedIds.length;
        const nqf = nq + QFORMER_IDS.length;
        const want = new Map<string, number[]>([
          ['input_ids', [seq]],
          ['qformer_input_ids', [QFORMER_IDS.length]],
          ['pixel_values', [3, vc.image_size, vc.image_size]],
          ['vision_last_hidden_state', [nv(), vc.hidden_size]],
          ['query_output', [nq, qc.hidden_size]],
          ['image_features', [nq, tc.hidden_size]],
          ['residual_final', [seq, tc.hidden_size]],
          ['logits', [seq, tc.vocab_size]],
          ['greedy_tokens', [NEW_TOKENS]],
        ]);
        for (let k = 0; k <= cfg.vision_config.num_hidden_layers; k++) want.set(`vision_hidden_states.${k}`, [nv(), vc.hidden_size]);
        for (let k = 0; k <= cfg.qformer_config.num_hidden_layers; k++) want.set(`qformer_hidden_states.${k}`, [nqf, qc.hidden_size]);
        for (let l = 0; l <= tc.num_hidden_layers; l++) want.set(`hidden_states.${l}`, [seq, tc.hidden_size]);
        expect(new Set(ref.keys())).toEqual(new Set(want.keys()));
        for (const [name, shape] of want) expect(T(name).shape, name).toEqual(shape);
        for (const name of ['input_ids', 'qformer_input_ids', 'greedy_tokens']) expect(T(name).data, name).toBeInstanceOf(Int32Array);
        for (const [name, t] of ref) expect(t.data.every(Number.isFinite), `${name} finite`).toBe(true);
        expect(Array.from(T('pixel_values').data)).toEqual(Array.from(pixels));
        expect(Array.from(T('qformer_input_ids').data)).toEqual(QFORMER_IDS);
        expect(Array.from(T('input_ids').data)).toEqual(placedIds); // [image]*Q + [BOS] + prompt
        expect(meta).toMatchObject({
          format: 'phaselens-instructblip-ref',
          image_token_index: String(IMAGE_TOKEN),
          image_start: '0',
          n_image_tokens: String(nq),
          expanded: c.placed ? '0' : '1',
          bos_token_id: String(BOS),
          bos_position: String(nq), // BOS follows the queries: it is not position 0
        });
      });

      it('(b) vision embeddings: patch conv with bias, CLS first, positions, no pre-layernorm = vision_hidden_states.0', () => {
        const want = evaEmbeddings(w, pixels, vc);
        expect(relErr(T('vision_hidden_states.0').data, want)).toBeLessThanOrEqual(TOL_OP);
      });

      it('(c) EVA encoder layer 0 (fused qkv with [q_bias, 0, v_bias], erf GELU MLP) = vision_hidden_states.1', () => {
        const d = vc.hidden_size;
        const bias = weight(w, 'vision_model.encoder.layers.0.self_attn.qkv.bias');
        expect(bias.subarray(d, 2 * d).every((v) => v === 0)).toBe(true); // keys carry no bias
        expect(bias.subarray(0, d).some((v) => v !== 0) && bias.subarray(2 * d).some((v) => v !== 0)).toBe(true);
        const x = T('vision_hidden_states.0').data;
        const got = T('vision_hidden_states.1').data;
        expect(relErr(got, evaLayer(w, 'vision_model.encoder.layers.0.', x, nv(), vc))).toBeLessThanOrEqual(TOL_LAYER);
        if (c.sharpen) expect(relErr(got, evaLayer(w, 'vision_model.encoder.layers.0.', x, nv(), vc, tanhGelu))).toBeGreaterThan(2 * TOL_LAYER);
      });

      it('(d) vision_last_hidden_state = post_layernorm(vision_hidden_states.Lv); the hidden states are not normed', () => {
        const d = vc.hidden_size;
        const last = T(`vision_hidden_states.${cfg.vision_config.num_hidden_layers}`).data;
        const want = layerNorm(last, nv(), d, weight(w, 'vision_model.post_layernorm.weight'), weight(w, 'vision_model.post_layernorm.bias'), vc.layer_norm_eps);
        expect(relErr(T('vision_last_hidden_state').data, want)).toBeLessThanOrEqual(TOL_OP);
        expect(relErr(T('vision_last_hidden_state').data, last)).toBeGreaterThan(1e-2);
      });

      it('(e) Q-Former embeddings: LayerNorm([query_tokens; word + position embeddings]) = qformer_hidden_states.0', () => {
        const dq = qc.hidden_size;
        const n = nq + QFORMER_IDS.length;
        const x = new Float64Array(n * dq);
        x.set(weight(w, 'query_tokens')); // [1, Q, dq]: no position embedding for the queries
        const words = weight(w, 'qformer.embeddings.word_embeddings.weight');
        const pos = weight(w, 'qformer.embeddings.position_embeddings.weight');
        QFORMER_IDS.forEach((t, p) => {
          for (let j = 0; j < dq; j++) x[(nq + p) * dq + j] = words[t * dq + j] + pos[p * dq + j];
        });
        const want = layerNorm(x, n, dq, weight(w, 'qformer.embeddings.layernorm.weight'), weight(w, 'qformer.embeddings.layernorm.bias'), qc.layer_norm_eps);
        expect(relErr(T('qformer_hidden_states.0').data, want)).toBeLessThanOrEqual(TOL_OP);
      });

      it('(f) Q-Former layer 0 (self + cross-attention, query / text FFNs) and layer 1 (no cross-attention)', () => {
        const nt = QFORMER_IDS.length;
        const image = T('vision_last_hidden_state').data;
        expect(w.has('qformer.encoder.layer.1.crossattention.attention.query.weight')).toBe(false);
        for (const i of [0, 1]) {
          const got = T(`qformer_hidden_states.${i + 1}`).data;
          const { out, cross } = qformerLayer(w, i, T(`qformer_hidden_states.${i}`).data, nq, nt, image, nv(), vc.hidden_size, qc);
          expect(cross !== undefined, `layer ${i} cross-attends`).toBe(i % qc.cross_attention_frequency === 0);
          expect(relErr(got, out), `layer ${i}`).toBeLessThanOrEqual(TOL_LAYER);
          if (c.sharpen) {
            const alt = qformerLayer(w, i, T(`qformer_hidden_states.${i}`).data, nq, nt, image, nv(), vc.hidden_size, qc, tanhGelu).out;
            expect(relErr(got, alt), `layer ${i}, tanh GELU`).toBeGreaterThan(2 * TOL_LAYER);
            if (cross) expect(Math.max(...cross), 'cross-attention is peaky').toBeGreaterThan(0.5);
          }
        }
      });

      it('(g) query_output = the first Q rows of the last Q-Former state; image_features = language_projection(query_output)', () => {
        const dq = qc.hidden_size;
        const last = T(`qformer_hidden_states.${cfg.qformer_config.num_hidden_layers}`).data;
        expect(Array.from(T('query_output').data)).toEqual(Array.from(last.subarray(0, nq * dq)));
        const want = linear(T('query_output').data, nq, dq, weight(w, 'language_projection.weight'), cfg.text_config.hidden_size, weight(w, 'language_projection.bias'));
        expect(relErr(T('image_features').data, want)).toBeLessThanOrEqual(TOL_OP);
      });

      it('(h) hidden_states.0: image_features in rows 0..Q-1, token embeddings elsewhere', () => {
        const d = cfg.text_config.hidden_size;
        const h0 = T('hidden_states.0').data;
        expect(Array.from(h0.subarray(0, nq * d))).toEqual(Array.from(T('image_features').data));
        const emb = weight(w, 'language_model.model.embed_tokens.weight');
        placedIds.forEach((t, p) => {
          if (p >= nq) expect(Array.from(h0.subarray(p * d, (p + 1) * d)), `text position ${p}`).toEqual(Array.from(emb.subarray(t * d, (t + 1) * d)));
        });
      });

      it('(i) decoder layer 0 over queries + text (causal, RoPE over positions 0..T-1) = hidden_states.1', () => {
        // RoPE is relative, so only contiguity of the positions is observable, not their origin
        const { out } = llamaDecoderLayer(w, 'language_model.model.layers.0.', T('hidden_states.0').data, placedIds.length, cfg.text_config);
        expect(relErr(T('hidden_states.1').data, out)).toBeLessThanOrEqual(TOL_LAYER);
      });

      it('(j) hidden_states.L = RMSNorm(residual_final); logits rows = hidden_states.L · lm_headᵀ', () => {
        const tc = cfg.text_config;
        const L = tc.num_hidden_layers;
        const seq = placedIds.length;
        const want = rmsNorm(T('residual_final').data, seq, tc.hidden_size, weight(w, 'language_model.model.norm.weight'), tc.rms_norm_eps);
        expect(relErr(T(`hidden_states.${L}`).data, want)).toBeLessThanOrEqual(TOL_OP);
        expect(relErr(T(`hidden_states.${L}`).data, T('residual_final').data)).toBeGreaterThan(1e-2);
        const pick = [0, nq, seq - 1]; // a query, BOS, the last token
        const lg = linear(rows(T(`hidden_states.${L}`), pick), pick.length, tc.hidden_size, weight(w, 'language_model.lm_head.weight'), tc.vocab_size);
        expect(relErr(rows(T('logits'), pick), lg)).toBeLessThanOrEqual(TOL_OP);
      });

      it(`(k) the first greedy token is the argmax of the last logits row${c.checkNoCache ? '; KV-cached decode = full recompute' : ''}`, async () => {
        const V = cfg.text_config.vocab_size;
        const lg = T('logits');
        expect(T('greedy_tokens').data[0]).toBe(argmax(lg.data.subarray((lg.shape[0] - 1) * V)));
        if (c.checkNoCache) {
          const full = await runInstructBlipReferenceFull({
            model: dir,
            pixelValues: pixels,
            pixelShape: [3, vc.image_size, vc.image_size],
            inputIds: PROMPT,
            qformerInputIds: QFORMER_IDS,
            maxNewTokens: NEW_TOKENS,
            noKvCache: true,
          });
          expect(Array.from(full.tensors.get('greedy_tokens')!.data)).toEqual(Array.from(T('greedy_tokens').data));
        }
      });
    });
  }
});
