/**
 * Self-checks of the intervention reference test/reference/interventions_ref.py (HF
 * transformers' models with the interventions in a registered attention function and layer
 * pre-hooks; run through interventions-ref.ts) on tiny 3-layer checkpoints of both families
 * (LLaVA with GQA, 4 heads / 2 KV heads; InstructBLIP with MHA).
 *
 * Expected values come from a second implementation in plain TypeScript loops (f64):
 * the LLaMA decoder of host-math.ts (RMSNorm, rotate-half RoPE, GQA causal softmax,
 * SwiGLU), run from HF's un-intervened inputs_embeds (hidden_states.0 of the script's
 * --states run, HF's stock eager attention) or, for patching, from HF's residual rows
 * entering layer l, with each intervention written here from its definition:
 *   knockout  pre-softmax: the knocked (q, k) pairs leave the softmax (renormalised over
 *             the rest; a row with every visible key knocked is uniform over them, which
 *             is what adding finfo(f32).min gives);
 *   ablation  recomputed two ways: (i) all heads — host-math's unmodified attention() with
 *             the ablated keys' V rows zeroed (Σ_j p_j v_j loses exactly those terms);
 *             (ii) a head subset — post-softmax zeroing in a loop here, no renormalisation;
 *             plus greedy generation checked token by token against a full recompute;
 *   patching  rows of the residual overwritten with the source run's rows / shifted by
 *             scale·v before the layer(s), the rest of the decoder run here.
 * And exact identities of the reference itself: its attention function with nothing to
 * edit gives HF's stock eager logits bit for bit; an empty knockout / ablation is the base
 * run bit for bit; patching from the target's own image changes nothing; patching every
 * position from the source at any layer is the source run.
 *
 * The LM's q_proj / k_proj are × QK_SHARPEN = 6 (writeSharpened in host-math.ts: weight
 * surgery on make-tiny's normal(0, 0.02) weights), so softmax rows are peaky and not near uniform: a uniform row (the "all keys
 * knocked" case) or a renormalised one (knockout vs ablation) differs visibly.
 *
 * Tolerances: f32 (PyTorch) vs f64 (loops) on identical weights and inputs; only f32
 * rounding separates them: relErr (max abs error / max |expected|) of the last-position
 * logits ≤ TOL_LOGITS = 5e-5 — three decoder layers at ≤ 2e-5 each (an f32 decoder layer
 * against f64 loops at d = 64), final norm and a 64-term lm_head dot product; a probability's relative
 * error ≤ TOL_P = 1e-4 (|Δ log p| ≤ 2 max |Δ logit| ≤ 2·TOL_LOGITS·max|logit|, max|logit|
 * < 1 here); a logit difference ≤ 2·TOL_LOGITS·max|logit| absolute. Every intervention
 * checked is asserted to move the logits by more than EFFECT = 20×TOL_LOGITS, so a no-op
 * would fail (measured: worst relErr vs the loops 5.1e-7 over both families; the smallest
 * effect checked is 4e-2). Identities that are the same f32 computation are compared with
 * toBe / toEqual.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randn, relErr } from '../helpers/data.ts';
import { add, attention, linear, loadCheckpoint, makeTiny, rmsNorm, rope, silu, weight, writeSharpened, type LlamaDims, type Mat, type Weights } from './host-math.ts';
import { patchRequest, runAblateReference, runKnockoutReference, runReferenceBatch, statesRequest, type AblateRef, type KnockoutRef, type PatchRef, type PatchSpec } from './interventions-ref.ts';
import type { RefTensor } from './pyref.ts';

const TOL_LOGITS = 5e-5;
const TOL_P = 1e-4;
const EFFECT = 20 * TOL_LOGITS;
const NEW_TOKENS = 3;
const IMAGE_TOKEN = 32000;

// ---------------------------------------------------------------------------------------
// The LLaMA decoder with interventions, plain loops (f64)

interface Edits {
  /** Pre-softmax knockout of (query q, key k) in layer l. */
  knock?: (l: number, q: number, k: number) => boolean;
  /** Post-softmax zeroing of head h's weight on key k in layer l (no renormalisation). */
  ablate?: (l: number, h: number, k: number) => boolean;
  /** Zero key k's V row (every KV head) in layer l. */
  vzero?: (l: number, k: number) => boolean;
  /** Edit the residual stream entering layer l in place ([n, d]). */
  resid?: (l: number, x: Mat) => void;
}

/** softmax(q·kᵀ/√hd) over the visible keys minus the knocked ones, then ablation zeroing. */
function editedAttention(q: Mat, k: Mat, v: Mat, n: number, nh: number, nkv: number, hd: number, l: number, e: Edits): Mat {
  const out = new Float64Array(n * nh * hd);
  const group = nh / nkv;
  for (let h = 0; h < nh; h++) {
    const kh = Math.floor(h / group);
    for (let i = 0; i < n; i++) {
      const keep = Array.from({ length: i + 1 }, (_, j) => !e.knock?.(l, i, j));
      // every visible key knocked: all scores round to finfo.min, the row is uniform
      const uniform = !keep.some(Boolean);
      const p = new Float64Array(i + 1);
      let mx = -Infinity;
      for (let j = 0; j <= i; j++) {
        if (!keep[j]) continue;
        let s = 0;
        for (let t = 0; t < hd; t++) s += q[i * nh * hd + h * hd + t] * k[j * nkv * hd + kh * hd + t];
        p[j] = s / Math.sqrt(hd);
        mx = Math.max(mx, p[j]);
      }
      let z = 0;
      for (let j = 0; j <= i; j++) z += p[j] = uniform ? 1 : keep[j] ? Math.exp(p[j] - mx) : 0;
      for (let j = 0; j <= i; j++) {
        const a = e.ablate?.(l, h, j) ? 0 : p[j] / z;
        for (let t = 0; t < hd; t++) out[i * nh * hd + h * hd + t] += a * v[j * nkv * hd + kh * hd + t];
      }
    }
  }
  return out;
}

function decoderLayer(w: Weights, l: number, x: Mat, n: number, tc: LlamaDims, e: Edits): Mat {
  const d = tc.hidden_size;
  const nh = tc.num_attention_heads;
  const nkv = tc.num_key_value_heads ?? nh;
  const hd = d / nh;
  const W = (name: string) => weight(w, `language_model.model.layers.${l}.${name}`);
  const normed = rmsNorm(x, n, d, W('input_layernorm.weight'), tc.rms_norm_eps);
  const q = linear(normed, n, d, W('self_attn.q_proj.weight'), nh * hd);
  const k = linear(normed, n, d, W('self_attn.k_proj.weight'), nkv * hd);
  const v = linear(normed, n, d, W('self_attn.v_proj.weight'), nkv * hd);
  rope(q, n, nh, hd, tc.rope_theta);
  rope(k, n, nkv, hd, tc.rope_theta);
  for (let j = 0; j < n; j++) if (e.vzero?.(l, j)) v.fill(0, j * nkv * hd, (j + 1) * nkv * hd);
  const attn = e.knock || e.ablate ? editedAttention(q, k, v, n, nh, nkv, hd, l, e) : attention(q, k, v, n, nh, nkv, hd);
  const x1 = add(x, linear(attn, n, nh * hd, W('self_attn.o_proj.weight'), d));
  const b = rmsNorm(x1, n, d, W('post_attention_layernorm.weight'), tc.rms_norm_eps);
  const I = tc.intermediate_size;
  const gate = linear(b, n, d, W('mlp.gate_proj.weight'), I);
  const up = linear(b, n, d, W('mlp.up_proj.weight'), I);
  return add(x1, linear(gate.map((g, i) => silu(g) * up[i]), n, I, W('mlp.down_proj.weight'), d));
}

/** Last-position logits of the decoder run from x (the rows entering layer `from`). */
function lastLogits(w: Weights, tc: LlamaDims & { num_hidden_layers: number; vocab_size: number }, x0: ArrayLike<number>, n: number, e: Edits = {}, from = 0): Mat {
  const d = tc.hidden_size;
  let x: Mat = Float64Array.from(x0);
  for (let l = from; l < tc.num_hidden_layers; l++) {
    e.resid?.(l, x);
    x = decoderLayer(w, l, x, n, tc, e);
  }
  const h = rmsNorm(x.subarray((n - 1) * d), 1, d, weight(w, 'language_model.model.norm.weight'), tc.rms_norm_eps);
  return linear(h, 1, d, weight(w, 'language_model.lm_head.weight'), tc.vocab_size);
}

function softmax(v: ArrayLike<number>): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < v.length; i++) mx = Math.max(mx, v[i]);
  const p = Float64Array.from(v, (x) => Math.exp(x - mx));
  const z = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / z);
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** A reference argmax is right if its expected logit is within f32 noise of the max. */
function expectArgmax(got: number, want: ArrayLike<number>, what: string): void {
  let mx = -Infinity;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    mx = Math.max(mx, want[i]);
    scale = Math.max(scale, Math.abs(want[i]));
  }
  expect(want[got], what).toBeGreaterThanOrEqual(mx - 2 * TOL_LOGITS * scale);
}

const relP = (got: number, want: number) => Math.abs(got / want - 1);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

// ---------------------------------------------------------------------------------------

interface Family {
  arch: 'llava' | 'instructblip';
  makeTiny: string[];
  inputIds: number[];
  qformerInputIds?: number[];
}

const FAMILIES: Family[] = [
  // "USER: <image>\nWhat is this? ASSISTANT:" (the image token expands to 9 positions, 5..13)
  { arch: 'llava', makeTiny: ['--gqa'], inputIds: [1, 3148, 1001, 29901, 29871, IMAGE_TOKEN, 29871, 13, 5618, 338, 445, 29973, 319, 1799, 9047, 13566, 29901] },
  // [image]*8 placed first by the script, then </s> (Vicuna InstructBLIP's BOS) + "What is in the image?"
  { arch: 'instructblip', makeTiny: [], inputIds: [2, 1724, 338, 297, 278, 1967, 29973], qformerInputIds: [101, 2054, 2003, 1999, 1996, 3746, 1029, 102] },
];

describe('interventions_ref.py (HF transformers + the interventions) self-checks — needs the venv of .ci/hf-venv.sh', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'interventions-ref-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [fi, f] of FAMILIES.entries()) {
    describe(f.arch, () => {
      const dir = join(tmp, f.arch);
      const pixels = randn(3 * 42 * 42, 300 + fi, 2);
      const sourcePixels = randn(3 * 42 * 42, 400 + fi, 2);
      let tc: any;
      let w: Weights;
      let tgt: Map<string, RefTensor>;
      let src: Map<string, RefTensor>;
      let n: number;
      let img: number[];
      let text: number[];
      let base: Mat;
      const common = () => ({ model: dir, pixelValues: pixels, pixelShape: [3, 42, 42] as [number, number, number], inputIds: f.inputIds, qformerInputIds: f.qformerInputIds, withLogits: true });
      const H = (t: Map<string, RefTensor>, l: number) => t.get(`hidden_states.${l}`)!.data as Float32Array;

      beforeAll(async () => {
        makeTiny(dir + '-src', f.makeTiny, f.arch);
        await writeSharpened(dir + '-src', dir);
        tc = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).text_config;
        w = await loadCheckpoint(dir);
        [tgt, src] = await runReferenceBatch([statesRequest({ ...common(), pixelValues: pixels }), statesRequest({ ...common(), pixelValues: sourcePixels })]);
        const ids = Array.from(tgt.get('input_ids')!.data);
        n = ids.length;
        img = range(0, n).filter((i) => ids[i] === IMAGE_TOKEN);
        text = range(0, n).filter((i) => ids[i] !== IMAGE_TOKEN);
        expect(img.length).toBe(f.arch === 'llava' ? 9 : 8);
        base = lastLogits(w, tc, H(tgt, 0), n);
      });

      describe('knockout (pre-softmax, renormalised)', () => {
        let ko: KnockoutRef;
        let entries: { dst: number[]; src: number[]; layers: number[] }[];
        beforeAll(async () => {
          entries = [
            { dst: [n - 1], src: img, layers: [] }, // (a) no layers: nothing happens
            { dst: range(0, n), src: [], layers: [0, 1, 2] }, // (a) no keys: nothing happens
            { dst: text, src: img, layers: [0, 1, 2] }, // image → text, every layer
            { dst: [n - 1], src: range(0, n - 1), layers: [0, 1, 2] }, // (b) last query sees only itself
            { dst: range(img[0], n), src: [text[0]], layers: [1] }, // one layer only: BOS / first text token
            { dst: range(0, 6), src: range(0, 6), layers: [0] }, // rows 0..5 lose every visible key: uniform
          ];
          ko = await runKnockoutReference({ ...common(), entries });
        });

        it('base: answer_id = argmax and p_base of the un-intervened forward (loops and HF\'s stock eager attention)', () => {
          const lg = tgt.get('logits')!;
          const refLast = lg.data.subarray((n - 1) * tc.vocab_size);
          // the registered attention function with nothing to edit = HF's eager, operation for operation
          expect(ko.last_logits_base!).toEqual(Array.from(refLast));
          expect(relErr(ko.last_logits_base!, base)).toBeLessThanOrEqual(TOL_LOGITS);
          expect(ko.answer_id).toBe(argmax(ko.last_logits_base!));
          expectArgmax(ko.answer_id, base, 'answer_id');
          expect(relP(ko.p_base, softmax(base)[ko.answer_id])).toBeLessThanOrEqual(TOL_P);
          expect(ko.seq).toBe(n);
          expect(ko.family).toBe(f.arch);
        });

        it('(a) an empty knockout (no layers / no keys) is the base run bit for bit', () => {
          for (const e of [0, 1]) {
            expect(ko.p[e]).toBe(ko.p_base);
            expect(ko.last_logits![e]).toEqual(ko.last_logits_base);
          }
        });

        it('(b) every knockout = the loops with those (q, k) pairs out of the softmax; each one matters', () => {
          const errs: number[] = [];
          for (const [i, e] of entries.entries()) {
            if (i < 2) continue;
            const dst = new Set(e.dst);
            const src = new Set(e.src);
            const layers = new Set(e.layers);
            const want = lastLogits(w, tc, H(tgt, 0), n, { knock: (l, q, k) => layers.has(l) && dst.has(q) && src.has(k) });
            const err = relErr(ko.last_logits![i], want);
            errs.push(err);
            expect(err, `entry ${i}`).toBeLessThanOrEqual(TOL_LOGITS);
            expect(relP(ko.p[i], softmax(want)[ko.answer_id]), `entry ${i} p`).toBeLessThanOrEqual(TOL_P);
            expectArgmax(ko.argmax[i], want, `entry ${i} argmax`);
            expect(relErr(want, base), `entry ${i} effect`).toBeGreaterThan(EFFECT);
          }
          console.log(`${f.arch} knockout: relErr vs loops ${errs.map((x) => x.toExponential(1)).join(' ')}; effect ${entries.slice(2).map((_, i) => relErr(ko.last_logits![i + 2], ko.last_logits_base!).toExponential(1)).join(' ')}`);
        });

        it('(b) a fully knocked row is uniform over its visible keys, not left un-knocked', () => {
          // entry 5 matched the loops' uniform rows in (b); here: the two plausible misreadings
          // (knocked pairs ignored when nothing would remain; the row keeps only its own key)
          // are far from it
          const S = new Set(entries[5].dst);
          const notKnocked = lastLogits(w, tc, H(tgt, 0), n);
          const partly = lastLogits(w, tc, H(tgt, 0), n, { knock: (l, q, k) => l === 0 && S.has(q) && S.has(k) && k < q }); // all but the self key
          expect(relErr(ko.last_logits![5], notKnocked)).toBeGreaterThan(EFFECT);
          expect(relErr(ko.last_logits![5], partly)).toBeGreaterThan(EFFECT);
        });
      });

      describe('ablation (post-softmax, not renormalised)', () => {
        let ab: AblateRef;
        let answer: number;
        beforeAll(async () => {
          answer = argmax(base) === 0 ? 1 : 0; // an explicit, non-greedy answer id
          ab = await runAblateReference({
            ...common(),
            answerId: answer,
            maxNewTokens: NEW_TOKENS,
            entries: [
              { keys: img, layers: [0, 1, 2], heads: null }, // (c) image keys, every layer and head
              { keys: [text[0], ...img.slice(0, 3)], layers: [2], heads: [1, 3] }, // a head subset in one layer
              { keys: img, layers: [], heads: null }, // no layers: nothing happens
            ],
          });
        });

        it('(c) ablating keys in every layer = zeroing their V rows (host-math attention unchanged)', async () => {
          const S = new Set(img);
          const want = lastLogits(w, tc, H(tgt, 0), n, { vzero: (_l, k) => S.has(k) });
          const err = relErr(ab.last_logits![0], want);
          expect(err).toBeLessThanOrEqual(TOL_LOGITS);
          expect(relErr(want, base)).toBeGreaterThan(EFFECT);
          expect(ab.answer_id).toBe(answer);
          expect(relP(ab.p_answer[0], softmax(want)[answer])).toBeLessThanOrEqual(TOL_P);
          expectArgmax(ab.argmax_after[0], want, 'argmax_after');
          // not renormalised: differs from the knockout of the same keys for every query
          const renorm = lastLogits(w, tc, H(tgt, 0), n, { knock: (_l, _q, k) => S.has(k) });
          expect(relErr(ab.last_logits![0], renorm)).toBeGreaterThan(EFFECT);
          console.log(`${f.arch} ablation: relErr vs V-zeroing ${err.toExponential(1)}, effect ${relErr(want, base).toExponential(1)}, vs renormalised ${relErr(ab.last_logits![0], renorm).toExponential(1)}`);
        });

        it('a head subset in one layer = post-softmax zeroing in the loops; empty layers = base bit for bit', () => {
          const S = new Set([text[0], ...img.slice(0, 3)]);
          const want = lastLogits(w, tc, H(tgt, 0), n, { ablate: (l, h, k) => l === 2 && (h === 1 || h === 3) && S.has(k) });
          expect(relErr(ab.last_logits![1], want)).toBeLessThanOrEqual(TOL_LOGITS);
          expect(relErr(want, base)).toBeGreaterThan(EFFECT);
          // the other heads really are untouched: all four heads would differ
          const all = lastLogits(w, tc, H(tgt, 0), n, { ablate: (l, _h, k) => l === 2 && S.has(k) });
          expect(relErr(ab.last_logits![1], all)).toBeGreaterThan(EFFECT);
          expect(ab.last_logits![2]).toEqual(ab.last_logits_base);
          expect(ab.p_answer[2]).toBe(ab.p_base);
        });

        it('greedy generation with the ablation: each token = the argmax of a full recompute with it', () => {
          expect(ab.tokens_base![0]).toBe(argmax(ab.last_logits_base!));
          const emb = weight(w, 'language_model.model.embed_tokens.weight');
          const d = tc.hidden_size;
          const S = new Set(img);
          for (const [e, edits] of [
            [-1, {}],
            [0, { vzero: (_l: number, k: number) => S.has(k) }],
          ] as [number, Edits][]) {
            const toks = e < 0 ? ab.tokens_base! : ab.tokens![e];
            expect(toks.length).toBe(NEW_TOKENS);
            if (e >= 0) expect(toks[0]).toBe(ab.argmax_after[e]);
            const x = Array.from(H(tgt, 0));
            for (let t = 0; t < NEW_TOKENS; t++) {
              const want = lastLogits(w, tc, x, n + t, edits);
              expectArgmax(toks[t], want, `entry ${e} token ${t}`);
              x.push(...emb.subarray(toks[t] * d, (toks[t] + 1) * d));
            }
          }
          expect(ab.tokens![0]).not.toEqual(ab.tokens_base); // the ablation changes the generation here
        });
      });

      describe('patching / steering at resid_pre', () => {
        const answers: [number, number] = [100, 200];
        const diff = (lg: ArrayLike<number>) => lg[answers[0]] - lg[answers[1]];
        const scaleOf = (lg: ArrayLike<number>) => Math.max(...Array.from(lg, Math.abs));
        let same: PatchRef;
        let whole: PatchRef;
        let whole1: PatchRef;
        let one: PatchRef;
        let on: PatchRef;
        let qOne: PatchRef;
        let qOn: PatchRef;
        let question: number[];
        let steer: PatchRef;
        let steerOn: PatchRef;
        const vector = randn(64, 500 + fi, 1);
        beforeAll(async () => {
          const p = (patch: PatchSpec) => patchRequest({ ...common(), patch });
          question = range(img[img.length - 1] + 1, n); // the text after the image: it reads the image
          [same, whole, whole1, one, on, qOne, qOn, steer, steerOn] = await runReferenceBatch([
            p({ sourcePixelValues: pixels, group: img, layers: [0, 1, 2], mode: 'copy', fromLayerOn: true, answers }),
            p({ sourcePixelValues: sourcePixels, group: range(0, n), layers: [0, 1, 2], mode: 'copy', fromLayerOn: false, answers }),
            p({ sourcePixelValues: sourcePixels, group: range(0, n), layers: [0, 2], mode: 'copy', fromLayerOn: true, answers }),
            p({ sourcePixelValues: sourcePixels, group: img, layers: [0, 1, 2], mode: 'copy', fromLayerOn: false, answers }),
            p({ sourcePixelValues: sourcePixels, group: img, layers: [0, 1, 2], mode: 'copy', fromLayerOn: true, answers }),
            p({ sourcePixelValues: sourcePixels, group: question, layers: [0, 1, 2], mode: 'copy', fromLayerOn: false, answers }),
            p({ sourcePixelValues: sourcePixels, group: question, layers: [0, 1, 2], mode: 'copy', fromLayerOn: true, answers }),
            p({ group: [n - 1, ...img.slice(0, 2)], layers: [0, 2], mode: 'add', vector, scale: 0.5, answers }),
            p({ group: [n - 1, ...img.slice(0, 2)], layers: [0, 1], mode: 'add', vector, scale: 0.5, fromLayerOn: true, answers }),
          ]);
        });

        it('base_target / base_source = the two un-intervened runs', () => {
          const srcBase = lastLogits(w, tc, H(src, 0), n);
          for (const r of [same, whole, one, on]) {
            expect(Math.abs(r.base_target - diff(base))).toBeLessThanOrEqual(2 * TOL_LOGITS * scaleOf(base));
            expect(r.base_target).toBe(diff(r.last_logits_base!));
          }
          expect(Math.abs(whole.base_source! - diff(srcBase))).toBeLessThanOrEqual(2 * TOL_LOGITS * scaleOf(srcBase));
          expect(relErr(whole.last_logits_source!, srcBase)).toBeLessThanOrEqual(TOL_LOGITS);
          expect(relErr(srcBase, base)).toBeGreaterThan(EFFECT); // the two images differ downstream
          expect(steer.base_source).toBeNull();
          expect(same.base_source).toBe(same.base_target);
        });

        it('(d) patching from the target\'s own image changes nothing (bit for bit)', () => {
          for (const r of same.results) {
            expect(r.logit_diff).toBe(same.base_target);
            expect(r.top_id).toBe(same.base_target_top_id);
            expect(r.last_logits).toEqual(same.last_logits_base);
          }
        });

        it('(d) patching every position from the source, at any layer (once or from it on), is the source run', () => {
          for (const r of [...whole.results, ...whole1.results]) {
            expect(r.logit_diff).toBe(whole.base_source);
            expect(r.top_id).toBe(whole.base_source_top_id);
            expect(r.last_logits).toEqual(whole.last_logits_source);
          }
          expect(whole.results.map((r) => r.layer)).toEqual([0, 1, 2]);
        });

        it('copying the image rows / the question rows at one layer / from it on = the loops from that layer', () => {
          const d = tc.hidden_size;
          let worst = 0;
          for (const [ref, all, group] of [
            [one, false, img],
            [on, true, img],
            [qOne, false, question],
            [qOn, true, question],
          ] as [PatchRef, boolean, number[]][]) {
            const copyFrom = (x: Mat, l: number) => {
              const s = H(src, l);
              for (const g of group) for (let j = 0; j < d; j++) x[g * d + j] = s[g * d + j];
            };
            for (const r of ref.results) {
              const l = r.layer;
              const want = lastLogits(w, tc, H(tgt, l), n, { resid: (k, x) => (k === l || (all && k > l)) && copyFrom(x, k) }, l);
              worst = Math.max(worst, relErr(r.last_logits!, want));
              expect(relErr(r.last_logits!, want), `layer ${l}${all ? ' on' : ''}`).toBeLessThanOrEqual(TOL_LOGITS);
              expect(Math.abs(r.logit_diff - diff(want))).toBeLessThanOrEqual(2 * TOL_LOGITS * scaleOf(want));
              expectArgmax(r.top_id, want, `layer ${l} top_id`);
              // the question rows entering layer 0 are the same token embeddings in both runs
              if (group === question && l === 0 && !all) expect(r.last_logits).toEqual(ref.last_logits_base);
              else expect(relErr(want, base), `layer ${l} effect`).toBeGreaterThan(EFFECT);
            }
          }
          // The image rows only read the image and the text before it (the same in both runs),
          // so once copied they stay the source's: from-layer-on = one layer (identical here).
          // The question rows read the image: from-layer-on differs, except at the last layer
          // (the same computation).
          for (const l of [0, 1, 2]) expect(relErr(on.results[l].last_logits!, one.results[l].last_logits!)).toBeLessThanOrEqual(TOL_LOGITS);
          for (const l of [0, 1]) expect(relErr(qOn.results[l].last_logits!, qOne.results[l].last_logits!), `question layer ${l}`).toBeGreaterThan(EFFECT);
          expect(qOn.results[2].last_logits).toEqual(qOne.results[2].last_logits);
          console.log(`${f.arch} copy patching: worst relErr vs loops ${worst.toExponential(1)}`);
        });

        it('steering adds scale·v to the group\'s rows at one layer / at every layer from it on (accumulating)', () => {
          const d = tc.hidden_size;
          const G = [n - 1, ...img.slice(0, 2)];
          let worst = 0;
          const addV = (x: Mat) => {
            for (const g of G) for (let j = 0; j < d; j++) x[g * d + j] += Math.fround(vector[j] * 0.5);
          };
          for (const [ref, all] of [
            [steer, false],
            [steerOn, true],
          ] as [PatchRef, boolean][]) {
            for (const r of ref.results) {
              const l = r.layer;
              const want = lastLogits(w, tc, H(tgt, l), n, { resid: (k, x) => (k === l || (all && k > l)) && addV(x) }, l);
              worst = Math.max(worst, relErr(r.last_logits!, want));
              expect(relErr(r.last_logits!, want), `layer ${l}${all ? ' on' : ''}`).toBeLessThanOrEqual(TOL_LOGITS);
              expect(Math.abs(r.logit_diff - diff(want))).toBeLessThanOrEqual(2 * TOL_LOGITS * scaleOf(want));
              expect(relErr(want, base)).toBeGreaterThan(EFFECT);
            }
          }
          expect(relErr(steerOn.results[0].last_logits!, steer.results[0].last_logits!)).toBeGreaterThan(EFFECT);
          console.log(`${f.arch} steering: worst relErr vs loops ${worst.toExponential(1)}`);
        });
      });
    });
  }
});
