/**
 * Self-checks of the metrics reference test/reference/metrics_ref.py (run through
 * metrics-ref.ts) on tiny llava and instructblip checkpoints from weights-tools/make-tiny.ts
 * (InstructBLIP: visual tokens = the Q query outputs at 0..Q-1, BOS at Q, not 0).
 *
 * Each check is a second, independent computation in plain TypeScript loops (f64), or an
 * identity the metric must satisfy against the model's own forward pass:
 *   - contextualization: the mean-unit-vector identity (inter = ū_img · ū_text, intra =
 *     (‖Σ û‖² − m) / (m(m−1))) against the script's explicit pairwise cosine means;
 *   - norm attention: the per-key vectors f^h(x_j) rebuilt here from v_proj / o_proj give
 *     the same norms; and Σ_j Σ_h α^h_{q,j} f^h(x_j) (the script's debug sum) equals the
 *     attention block's output row q recomputed here from q/k/v (RoPE, causal softmax),
 *     and closes the residual stream: hidden_states.{l+1}[q] = hidden_states.{l}[q] +
 *     that sum + MLP(…) — so f, the W_O column slices and the GQA head map are right;
 *   - LogitLens: at l = L it is the top-k of the reference's own `logits` rows (so index L
 *     is not normed twice); at l < L the same top-k as RMSNorm + lm_head computed here.
 *
 * Tolerances: where both sides are f64 computations from the same f32 activations and
 * weights, only summation order separates them: 1e-9 (the brief's bound for the
 * contextualization identity) or relErr 1e-10. Where one side is the f32 PyTorch forward
 * (attention maps, logits, hidden states), relErr ≤ 1e-5 (a few hundred f32 roundings on
 * values of size ~1, as in llava_ref.test.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randn, relErr } from '../helpers/gpu.ts';
import { computeMetricsReference, runMetricsReferenceFull, type MetricsRef } from './metrics-ref.ts';
import type { RefTensor } from './pyref.ts';
import { linear, loadCheckpoint as loadAll, makeTiny, rmsNorm, rope } from './host-math.ts';

type Weights = Map<string, Float32Array>;

async function loadCheckpoint(dir: string): Promise<Weights> {
  return new Map([...(await loadAll(dir))].map(([name, t]) => [name, t.data]));
}

const IMAGE_TOKEN = 32000;
// "USER: <image>\nWhat is this? ASSISTANT:" as LLaMA ids (exact ids do not matter here)
const PROMPT = [1, 3148, 1001, 29901, 29871, IMAGE_TOKEN, 29871, 13, 5618, 338, 445, 29973, 319, 1799, 9047, 13566, 29901];
const P = 'language_model.model.';
// InstructBLIP: "What is in the image?" after its tokenizer's BOS `</s>` = 2 (the script
// prepends the Q image tokens) and the Q-Former's "[CLS] what is in the image ? [SEP]"
const IB_BOS = 2;
const IB_PROMPT = [IB_BOS, 1724, 338, 297, 278, 1967, 29973];
const IB_QFORMER_IDS = [101, 2054, 2003, 1999, 1996, 3746, 1029, 102];

// ---------------------------------------------------------------------------------------
// plain-loop f64 math on row-major flat matrices

function row(x: ArrayLike<number>, i: number, d: number): Float64Array {
  const r = new Float64Array(d);
  for (let j = 0; j < d; j++) r[j] = x[i * d + j];
  return r;
}

const norm = (v: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
};

/** The mean-unit-vector form of the contextualization metrics (what the GPU probes use). */
function contextIdentity(h: ArrayLike<number>, d: number, image: number[], text: number[]) {
  const meanUnit = (idx: number[]) => {
    const s = new Float64Array(d);
    for (const i of idx) {
      const r = row(h, i, d);
      const n = norm(r);
      for (let j = 0; j < d; j++) s[j] += r[j] / n;
    }
    return s;
  };
  const si = meanUnit(image);
  const st = meanUnit(text);
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((acc, v, j) => acc + v * b[j], 0);
  const intra = (s: Float64Array, m: number) => (m < 2 ? null : (dot(s, s) - m) / (m * (m - 1)));
  return {
    inter: image.length && text.length ? dot(si, st) / (image.length * text.length) : null,
    intra_image: intra(si, image.length),
    intra_text: intra(st, text.length),
  };
}

/** Top-k of one logits row (f64 softmax over the whole row); ties → smaller id. */
function topkSoftmax(z: ArrayLike<number>, k: number): { ids: number[]; probs: number[] } {
  let mx = -Infinity;
  for (let i = 0; i < z.length; i++) mx = Math.max(mx, z[i]);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += Math.exp(z[i] - mx);
  const order = Array.from({ length: z.length }, (_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
  const ids = order.slice(0, k);
  return { ids, probs: ids.map((i) => Math.exp(z[i] - mx) / sum) };
}

// ---------------------------------------------------------------------------------------

interface Case {
  name: string;
  arch: 'llava' | 'instructblip';
  makeTiny: string[];
  /** Visual tokens: llava patches, or instructblip num_query_tokens. */
  nImage: number;
  dropBos: boolean;
  /** As passed (undefined: default = last; negative: from the end). */
  query?: number;
  k: number;
}

const CASES: Case[] = [
  { name: 'llava, f32, MHA, default options (BOS kept, last query, k = 5)', arch: 'llava', makeTiny: [], nImage: 9, dropBos: false, k: 5 },
  { name: 'llava, f16 weights, GQA (4 heads / 2 KV heads), --drop-bos, query −4, k = 3', arch: 'llava', makeTiny: ['--dtype', 'f16', '--gqa'], nImage: 9, dropBos: true, query: -4, k: 3 },
  { name: 'instructblip, f32, GQA, --drop-bos (BOS at Q), last query, k = 4', arch: 'instructblip', makeTiny: ['--gqa'], nImage: 8, dropBos: true, k: 4 },
];

describe('metrics_ref.py (reference metrics) self-checks — needs /usr/bin/python3 with torch, numpy', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'metrics-ref-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [ci, c] of CASES.entries()) {
    describe(c.name, () => {
      const dir = join(tmp, `ckpt${ci}`);
      let tc: any;
      let w: Weights;
      let ref: Map<string, RefTensor>;
      let m: MetricsRef;
      let activations: string;
      let seq: number, d: number, L: number, nh: number, nkv: number, hd: number, q: number;
      let image: number[], text: number[], bos: number;
      const pixels = randn(3 * 42 * 42, 200 + ci, 2);

      beforeAll(async () => {
        makeTiny(dir, c.makeTiny, c.arch);
        tc = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).text_config;
        w = await loadCheckpoint(dir);
        const res = await runMetricsReferenceFull({
          model: dir,
          pixelValues: pixels,
          pixelShape: [3, 42, 42],
          inputIds: c.arch === 'llava' ? PROMPT : IB_PROMPT,
          ...(c.arch === 'instructblip' ? { qformerInputIds: IB_QFORMER_IDS } : {}),
          dropBos: c.dropBos,
          query: c.query,
          k: c.k,
          debugSums: true,
          workDir: join(tmp, `work${ci}`),
        });
        ref = res.tensors;
        m = res.metrics;
        activations = res.activations!;
        seq = ref.get('input_ids')!.shape[0];
        d = tc.hidden_size;
        L = tc.num_hidden_layers;
        nh = tc.num_attention_heads;
        nkv = tc.num_key_value_heads ?? nh;
        hd = d / nh;
        q = c.query === undefined ? seq - 1 : c.query < 0 ? seq + c.query : c.query;
        const ids = Array.from(ref.get('input_ids')!.data);
        image = ids.flatMap((t, i) => (t === IMAGE_TOKEN ? [i] : []));
        bos = ids.findIndex((t) => t !== IMAGE_TOKEN); // 0 for llava's prompt, Q for instructblip's
        text = ids.flatMap((t, i) => (t !== IMAGE_TOKEN && !(c.dropBos && i === bos) ? [i] : []));
      });

      const T = (name: string) => {
        const t = ref.get(name);
        if (!t) throw new Error(`reference output has no ${name}`);
        return t.data as Float32Array;
      };

      it('writes the per-image schema with the shapes the config implies', () => {
        expect(Object.keys(m).sort()).toEqual(['contextualization', 'debug', 'logit_lens', 'norm_attention', 'options', 'reference', 'tokens']);
        expect(m.tokens).toEqual({ seq, image: [image[0], image[image.length - 1] + 1], text });
        expect(image.length).toBe(c.nImage);
        expect(bos).toBe(c.arch === 'llava' ? 0 : c.nImage);
        expect(Array.from(ref.get('input_ids')!.data)[bos]).toBe(c.arch === 'llava' ? 1 : IB_BOS);
        expect(m.options).toEqual({ drop_bos: c.dropBos, query: q, k: c.k });
        for (const key of ['inter', 'intra_image', 'intra_text'] as const) expect(m.contextualization[key]).toHaveLength(L + 1);
        expect(Object.keys(m.contextualization.last_layer_prenorm).sort()).toEqual(['inter', 'intra_image', 'intra_text']);
        expect(m.norm_attention.query).toBe(q);
        expect(m.norm_attention.layer.map((r) => r.length)).toEqual(Array(L).fill(seq));
        expect(m.norm_attention.head.map((hs) => hs.map((r) => r.length))).toEqual(Array(L).fill(Array(nh).fill(seq)));
        expect(m.logit_lens.k).toBe(c.k);
        expect(m.logit_lens.top_ids.map((l) => l.map((r) => r.length))).toEqual(Array(L + 1).fill(Array(image.length).fill(c.k)));
        expect(m.logit_lens.top_probs.map((l) => l.map((r) => r.length))).toEqual(Array(L + 1).fill(Array(image.length).fill(c.k)));
      });

      it('contextualization: pairwise means = the mean-unit-vector identity (|Δ| ≤ 1e-9, f64)', () => {
        let worst = 0;
        const check = (got: { inter: number | null; intra_image: number | null; intra_text: number | null }, h: Float32Array, what: string) => {
          const want = contextIdentity(h, d, image, text);
          for (const key of ['inter', 'intra_image', 'intra_text'] as const) {
            expect(got[key], `${what} ${key}`).not.toBeNull();
            const diff = Math.abs(got[key]! - want[key]!);
            worst = Math.max(worst, diff);
            expect(diff, `${what} ${key}: ${got[key]} vs ${want[key]}`).toBeLessThanOrEqual(1e-9);
          }
        };
        const cx = m.contextualization;
        for (let l = 0; l <= L; l++) check({ inter: cx.inter[l], intra_image: cx.intra_image[l], intra_text: cx.intra_text[l] }, T(`hidden_states.${l}`), `l=${l}`);
        check(cx.last_layer_prenorm, T('residual_final'), 'last_layer_prenorm');
        // the pre-norm entry really is a different tensor from index L
        expect(cx.last_layer_prenorm.inter).not.toBe(cx.inter[L]);
        console.log(`contextualization: max |pairwise − identity| = ${worst.toExponential(2)}`);
      });

      /** f^h(x_j) rebuilt here: [nh][seq][d]; `kvMap` picks the KV head of query head h. */
      function kobayashiVectors(l: number, kvMap: (h: number) => number): Float64Array[] {
        const lp = `${P}layers.${l}.self_attn.`;
        const x = T(`attn_input_normed.${l}`);
        const v = linear(x, seq, d, w.get(lp + 'v_proj.weight')!, nkv * hd); // no bias: LLaMA
        const wo = w.get(lp + 'o_proj.weight')!; // [d, nh·hd]
        return Array.from({ length: nh }, (_, h) => {
          const kh = kvMap(h);
          const f = new Float64Array(seq * d);
          for (let j = 0; j < seq; j++) {
            for (let o = 0; o < d; o++) {
              let s = 0;
              for (let e = 0; e < hd; e++) s += v[j * nkv * hd + kh * hd + e] * wo[o * nh * hd + h * hd + e];
              f[j * d + o] = s;
            }
          }
          return f;
        });
      }

      /** Σ_j Σ_h α^h_{q,j} f^h(x_j) from vectors built here. */
      function sumOverKeys(l: number, f: Float64Array[]): Float64Array {
        const a = T(`attentions.${l}`);
        const out = new Float64Array(d);
        for (let h = 0; h < nh; h++) for (let j = 0; j < seq; j++) for (let o = 0; o < d; o++) out[o] += a[(h * seq + q) * seq + j] * f[h][j * d + o];
        return out;
      }

      it('norm attention: per-head and layer norms = ‖α f^h(x_j)‖ rebuilt here (relErr ≤ 1e-10); zero for keys after the query', () => {
        const group = nh / nkv;
        for (let l = 0; l < L; l++) {
          const f = kobayashiVectors(l, (h) => Math.floor(h / group));
          const a = T(`attentions.${l}`);
          const layer = new Float64Array(seq);
          const head = new Float64Array(nh * seq);
          for (let j = 0; j < seq; j++) {
            const sum = new Float64Array(d);
            for (let h = 0; h < nh; h++) {
              const alpha = a[(h * seq + q) * seq + j];
              const v = f[h].subarray(j * d, (j + 1) * d).map((x) => alpha * x);
              head[h * seq + j] = norm(v);
              for (let o = 0; o < d; o++) sum[o] += v[o];
            }
            layer[j] = norm(sum);
          }
          expect(relErr(m.norm_attention.layer[l], layer), `layer ${l}`).toBeLessThanOrEqual(1e-10);
          expect(relErr(m.norm_attention.head[l].flat(), head), `heads of layer ${l}`).toBeLessThanOrEqual(1e-10);
          for (let j = q + 1; j < seq; j++) expect(m.norm_attention.layer[l][j]).toBe(0);
          expect(m.norm_attention.layer[l].slice(0, q + 1).every((x) => x > 0)).toBe(true);
        }
      });

      it('norm attention: Σ_j Σ_h α f^h(x_j) = the attention block output row q, recomputed from q/k/v (relErr ≤ 1e-5)', () => {
        const group = nh / nkv;
        for (let l = 0; l < L; l++) {
          const lp = `${P}layers.${l}.self_attn.`;
          const x = T(`attn_input_normed.${l}`);
          const qm = linear(x, seq, d, w.get(lp + 'q_proj.weight')!, nh * hd);
          const km = linear(x, seq, d, w.get(lp + 'k_proj.weight')!, nkv * hd);
          const vm = linear(x, seq, d, w.get(lp + 'v_proj.weight')!, nkv * hd);
          rope(qm, seq, nh, hd, tc.rope_theta ?? 10000);
          rope(km, seq, nkv, hd, tc.rope_theta ?? 10000);
          const ctx = new Float64Array(nh * hd); // attention output of row q, heads concatenated
          for (let h = 0; h < nh; h++) {
            const kh = Math.floor(h / group);
            const s = new Float64Array(q + 1);
            let mx = -Infinity;
            for (let j = 0; j <= q; j++) {
              let dot = 0;
              for (let e = 0; e < hd; e++) dot += qm[q * nh * hd + h * hd + e] * km[j * nkv * hd + kh * hd + e];
              s[j] = dot / Math.sqrt(hd);
              mx = Math.max(mx, s[j]);
            }
            let z = 0;
            for (let j = 0; j <= q; j++) z += s[j] = Math.exp(s[j] - mx);
            for (let j = 0; j <= q; j++) for (let e = 0; e < hd; e++) ctx[h * hd + e] += (s[j] / z) * vm[j * nkv * hd + kh * hd + e];
          }
          const want = linear(ctx, 1, nh * hd, w.get(lp + 'o_proj.weight')!, d);
          const got = m.debug!.attn_out_from_f[l];
          expect(relErr(got, want), `layer ${l}`).toBeLessThanOrEqual(1e-5);
          // the same sum from the vectors built here
          expect(relErr(sumOverKeys(l, kobayashiVectors(l, (h) => Math.floor(h / group))), want), `layer ${l}, TS vectors`).toBeLessThanOrEqual(1e-5);
          if (nkv < nh) {
            // the identity can fail: the wrong GQA head map (h mod Hkv) breaks it
            expect(relErr(sumOverKeys(l, kobayashiVectors(l, (h) => h % nkv)), want), `layer ${l}, wrong GQA map`).toBeGreaterThan(1e-2);
          }
        }
      });

      it('norm attention: the debug sum closes the residual stream, h_{l+1}[q] = h_l[q] + Σ + MLP(…) (relErr ≤ 1e-5)', () => {
        for (let l = 0; l < L; l++) {
          const lp = `${P}layers.${l}.`;
          const h0 = row(T(`hidden_states.${l}`), q, d);
          const mid = h0.map((v, o) => v + m.debug!.attn_out_from_f[l][o]);
          const hn = rmsNorm(mid, 1, d, w.get(lp + 'post_attention_layernorm.weight')!, tc.rms_norm_eps);
          const I = tc.intermediate_size;
          const gate = linear(hn, 1, d, w.get(lp + 'mlp.gate_proj.weight')!, I);
          const up = linear(hn, 1, d, w.get(lp + 'mlp.up_proj.weight')!, I);
          const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
          const down = linear(act, 1, I, w.get(lp + 'mlp.down_proj.weight')!, d);
          const want = mid.map((v, o) => v + down[o]);
          const next = l < L - 1 ? T(`hidden_states.${l + 1}`) : T('residual_final'); // index L is normed
          expect(relErr(row(next, q, d), want), `layer ${l}`).toBeLessThanOrEqual(1e-5);
        }
      });

      it('LogitLens: index L = top-k of the reference logits rows (not normed twice); l < L = RMSNorm + lm_head here', () => {
        const vocab = tc.vocab_size;
        const lmHead = w.get('language_model.lm_head.weight')!;
        const logits = T('logits');
        const k = c.k;
        const [s] = m.tokens.image;
        for (let i = 0; i < image.length; i++) {
          const want = topkSoftmax(logits.subarray((s + i) * vocab, (s + i + 1) * vocab), k);
          expect(m.logit_lens.top_ids[L][i], `row ${i}`).toEqual(want.ids);
          expect(relErr(m.logit_lens.top_probs[L][i], want.probs), `row ${i}`).toBeLessThanOrEqual(1e-5);
        }
        // norming index L again would change the answer (so the check above can fail)
        const twice = rmsNorm(T(`hidden_states.${L}`).subarray(s * d, (s + 1) * d), 1, d, w.get(`${P}norm.weight`)!, tc.rms_norm_eps);
        const tw = topkSoftmax(linear(twice, 1, d, lmHead, vocab), k);
        expect(relErr(m.logit_lens.top_probs[L][0], tw.probs)).toBeGreaterThan(1e-3);

        for (let l = 0; l < L; l++) {
          const hs = T(`hidden_states.${l}`).subarray(s * d, (s + image.length) * d);
          const normed = rmsNorm(hs, image.length, d, w.get(`${P}norm.weight`)!, tc.rms_norm_eps);
          const lg = linear(normed, image.length, d, lmHead, vocab);
          for (let i = 0; i < image.length; i++) {
            const want = topkSoftmax(lg.subarray(i * vocab, (i + 1) * vocab), k);
            expect(m.logit_lens.top_ids[l][i], `l=${l} row ${i}`).toEqual(want.ids);
            expect(relErr(m.logit_lens.top_probs[l][i], want.probs), `l=${l} row ${i}`).toBeLessThanOrEqual(1e-10);
          }
        }
        for (const l of m.logit_lens.top_probs) for (const r of l) for (let j = 1; j < r.length; j++) expect(r[j]).toBeLessThanOrEqual(r[j - 1]);
      });

      if (c.arch === 'instructblip') {
        it('instructblip: image = [0, Q); --bos-position moves the dropped token; --drop-bos needs BOS there', async () => {
          expect(m.tokens.image).toEqual([0, c.nImage]);
          expect(m.tokens.text).toEqual(Array.from({ length: seq - c.nImage - 1 }, (_, i) => c.nImage + 1 + i));
          const moved = await computeMetricsReference(activations, dir, { dropBos: true, bosPosition: seq - 1, k: 1 });
          expect(moved.tokens.text).toEqual(Array.from({ length: seq - c.nImage - 1 }, (_, i) => c.nImage + i));
          const want = contextIdentity(T('hidden_states.2'), d, image, moved.tokens.text);
          expect(Math.abs(moved.contextualization.inter[2]! - want.inter!)).toBeLessThanOrEqual(1e-9);
          // image span [0, Q + 1) leaves a non-BOS token first: --drop-bos refuses to guess
          await expect(computeMetricsReference(activations, dir, { dropBos: true, image: [0, c.nImage + 1], k: 1 })).rejects.toThrow(/bos_token_id/);
        });
      }

      if (ci === 0) {
        it('options: --drop-bos, --query, --topk and an explicit image span; null where a set is too small', async () => {
          const other = await computeMetricsReference(activations, dir, { dropBos: true, query: 3, k: 2 });
          expect(other.tokens.text).toEqual(text.filter((i) => i !== 0));
          expect(other.norm_attention.query).toBe(3);
          expect(other.logit_lens.top_ids[0][0]).toEqual(m.logit_lens.top_ids[0][0].slice(0, 2));
          const want = contextIdentity(T('hidden_states.1'), d, image, other.tokens.text);
          expect(Math.abs(other.contextualization.inter[1]! - want.inter!)).toBeLessThanOrEqual(1e-9);
          expect(other.contextualization.inter[1]).not.toBe(m.contextualization.inter[1]);
          for (let l = 0; l < L; l++) for (let j = 4; j < seq; j++) expect(other.norm_attention.layer[l][j]).toBe(0);

          // image = [1, seq), BOS dropped: the text set is empty
          const none = await computeMetricsReference(activations, dir, { dropBos: true, image: [1, seq], k: 1 });
          expect(none.tokens.text).toEqual([]);
          expect(none.contextualization.inter.every((x) => x === null)).toBe(true);
          expect(none.contextualization.intra_text.every((x) => x === null)).toBe(true);
          expect(none.contextualization.intra_image.every((x) => typeof x === 'number')).toBe(true);
          expect(none.logit_lens.top_ids[0]).toHaveLength(seq - 1);
          // image = [0, seq − 1): one text token, inter defined, intra_text null
          const one = await computeMetricsReference(activations, dir, { image: [0, seq - 1], k: 1 });
          expect(one.tokens.text).toEqual([seq - 1]);
          expect(one.contextualization.inter.every((x) => typeof x === 'number')).toBe(true);
          expect(one.contextualization.intra_text.every((x) => x === null)).toBe(true);
        });
      }
    });
  }
});
