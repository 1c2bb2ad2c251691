/**
 * Attention knockout ("Cross-modal Information Flow in Multimodal Large Language Models",
 * arXiv 2411.18620). A flow `DST<-SRC` blocks every attention edge from a query position
 * in DST to a key position in SRC, in every head, in a window of k decoder layers centred
 * on l (l − ⌊k/2⌋ … l + ⌈k/2⌉ − 1, clipped to the model: k = 9 gives l−4 … l+4), as a
 * pre-softmax mask of −3.4e38 (HF's finfo(f32).min): the other weights of the row
 * renormalise. Reported per centre layer: p_knock of the answer token at the last
 * position and rel_change_pct = (p_knock − p_base) / p_base × 100.
 *
 * The sweep re-runs only what it must. A knockout changes only the DST query rows inside
 * the window, and under causal attention a row depends only on rows at or before it, so
 * every row before the first DST position p0 is the same as in the un-intervened run, at
 * every layer. That run is made once per item, keeping the residual stream entering each
 * decoder layer and every layer's K/V (a KV cache); a window starting at layer lo then
 * re-runs only layers lo … L−1 and only rows p0 … S−1, attending to the cached K/V of the
 * rows before p0 (the towers and the layers below lo never run again); afterwards the
 * cache's rows p0 … S−1 of those layers get their un-intervened values back.
 *
 * The narrow-gate study's ablations (arXiv 2412.06646) knock a flow out in a fixed range of
 * layers instead — all of them, or i … L−1 for i = L−1 down to 0 ("from the last layers
 * back") — and score the answer generated under the knockout too (`knockoutLayers`). There
 * the tokens the model generates are text queries as well: a flow whose DST is the `text`
 * group (`Flow.generated`) blocks each new token's edges to SRC, at every decoding step,
 * in the same layers.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { actName } from '../hooks/names.ts';
import type { Vlm, VlmInput } from '../models/vlm.ts';
import { runWithCache } from '../probes/cache.ts';
import { generate } from '../models/generate.ts';
import { lastLogits, lastOutput, runLast, type LastOutput } from './answer.ts';

/** Blocks attention; HF's finfo(float32).min (the attention op treats ≤ −1e30 as exactly blocked). */
export const BLOCKED = -3.4028234663852886e38;

export interface Flow {
  /** As given, normalised to `dst<-src`. */
  name: string;
  dst: number[];
  src: number[];
  /** Generated tokens are DST queries too (DST is `text`); only `knockoutLayers` generates. */
  generated?: boolean;
}

/**
 * `--flow study`: the six flows of the information-flow study, image→question, image→last,
 * question→last, last→last (the last position's attention to itself), object→question and
 * image-without-object→question (the last two need an object box).
 */
export const STUDY_FLOWS: readonly string[] = ['question<-image', 'last<-image', 'last<-question', 'last<-last', 'question<-object', 'question<-image-object'];

/**
 * `--flow gate`: the narrow-gate study's four ablations (arXiv 2412.06646), text queries —
 * the prompt's and the generated tokens — cut off from the end-of-image token, the last
 * image token, one random internal image token, and every image token.
 */
export const GATE_FLOWS: readonly string[] = ['text<-end-of-image', 'text<-last-image', 'text<-random-image', 'text<-image'];

const PRESETS: Record<string, readonly string[]> = { study: STUDY_FLOWS, gate: GATE_FLOWS };

/** The `--flow` list with the presets `study` and `gate` written out (in place, duplicates dropped). */
export function expandFlows(specs: readonly string[]): string[] {
  return [...new Set(specs.flatMap((s) => PRESETS[s.trim()] ?? [s]))];
}

/** `DST<-SRC` or `SRC->DST` → the two group specs. */
export function parseFlow(spec: string): { dst: string; src: string; name: string } {
  const back = spec.split('<-');
  const fwd = spec.split('->');
  let dst: string;
  let src: string;
  if (back.length === 2 && fwd.length === 1) [dst, src] = back;
  else if (fwd.length === 2 && back.length === 1) [src, dst] = fwd;
  else throw new UserError(`--flow ${JSON.stringify(spec)}: expected DST<-SRC or SRC->DST, e.g. 'last<-image'`);
  [dst, src] = [dst.trim(), src.trim()];
  if (!dst || !src) throw new UserError(`--flow ${JSON.stringify(spec)}: both sides need a token group`);
  return { dst, src, name: `${dst}<-${src}` };
}

/** Decoder layers [lo, hi] (inclusive) of a window of k layers centred on `centre`, clipped to 0..L−1. */
export function layerWindow(centre: number, k: number, L: number): [number, number] {
  if (!Number.isInteger(k) || k < 1) throw new UserError(`--window must be a positive integer, got ${k}`);
  return [Math.max(0, centre - Math.floor(k / 2)), Math.min(L - 1, centre + Math.ceil(k / 2) - 1)];
}

/** The additive mask [S − q0, S] of query rows q0 … S−1: BLOCKED at (q ∈ dst, k ∈ src), 0 elsewhere. */
export function knockoutMask(gpu: Gpu, seq: number, flow: Flow, q0 = 0): Tensor {
  const m = new Float32Array((seq - q0) * seq);
  for (const q of flow.dst) for (const k of flow.src) if (q >= q0) m[(q - q0) * seq + k] = BLOCKED;
  return gpu.upload(m, [seq - q0, seq], `knockout(${flow.name})`);
}

export interface KnockoutResult {
  answer: { id: number; p_base: number };
  flows: Record<string, { dst: number[]; src: number[]; centres: number[]; window: [number, number][]; p: number[]; rel_change_pct: number[] }>;
}

export interface KnockoutOptions {
  /** Window size k (default 9). */
  window: number;
  /** Centre layers (default every decoder layer). */
  centres?: number[];
  /** Answer token id (default: the greedy first token of the un-intervened run). */
  answer?: number;
}

export async function knockoutSweep(gpu: Gpu, m: Vlm, x: VlmInput, flows: readonly Flow[], o: KnockoutOptions): Promise<KnockoutResult> {
  const lm = m.languageModel;
  const L = lm.cfg.num_hidden_layers;
  const seq = x.ids.length;
  const names = Array.from({ length: L }, (_, l) => actName('resid_pre', l));
  const cache = lm.createCache(gpu, seq);
  const { result: hidden, cache: resid } = await runWithCache(gpu, m.hooks, names, async () => m.forward(gpu, x, { cache }));
  // the re-runs overwrite rows p0… of the cache: these copies put the base rows back
  const width = lm.cfg.num_key_value_heads * lm.cfg.head_dim;
  const keep = (t: Tensor) => {
    const c = gpu.tensor(t.shape, t.dtype, `${t.name}.base`);
    gpu.copy(t, c);
    return c;
  };
  const baseK = cache.k.map(keep);
  const baseV = cache.v.map(keep);
  const first = await runLast(gpu, lm, () => hidden);
  const answer = o.answer ?? first.top;
  const pBase = first.p(answer);
  const centres = o.centres ?? Array.from({ length: L }, (_, l) => l);
  const out: KnockoutResult = { answer: { id: answer, p_base: pBase }, flows: {} };
  const d = lm.cfg.hidden_size;
  try {
    for (const flow of flows) {
      const p0 = Math.min(...flow.dst);
      const mask = knockoutMask(gpu, seq, flow, p0);
      const r = { dst: flow.dst, src: flow.src, centres, window: [] as [number, number][], p: [] as number[], rel_change_pct: [] as number[] };
      for (const c of centres) {
        const [lo, hi] = layerWindow(c, o.window, L);
        const rows = gpu.tensor([seq - p0, d], 'f32', 'knockout.rows');
        gpu.copy(resid.get(names[lo])!, rows, p0 * d, 0, (seq - p0) * d);
        const knocked = await runLast(gpu, lm, () => lm.forward(gpu, rows, { fromLayer: lo, pos0: p0, cache, mask: (l) => (l >= lo && l <= hi ? mask : undefined) }));
        gpu.release(rows);
        for (let l = lo; l < L; l++) {
          gpu.copy(baseK[l], cache.k[l], p0 * width, p0 * width, (seq - p0) * width);
          gpu.copy(baseV[l], cache.v[l], p0 * width, p0 * width, (seq - p0) * width);
        }
        const p = knocked.p(answer);
        r.window.push([lo, hi]);
        r.p.push(p);
        r.rel_change_pct.push(((p - pBase) / pBase) * 100);
      }
      gpu.release(mask);
      out.flows[flow.name] = r;
    }
  } finally {
    gpu.release(...resid.values(), ...cache.k, ...cache.v, ...baseK, ...baseV);
  }
  return out;
}

/** `--from-last`: the layer ranges i … L−1 for i = L−1 down to 0. */
export function fromLastRanges(L: number): [number, number][] {
  return Array.from({ length: L }, (_, j) => [L - 1 - j, L - 1]);
}

export interface LayerKnockoutOptions {
  /** Decoder layer ranges [lo, hi] (inclusive), one knocked-out run each. */
  ranges: [number, number][];
  /** Answer token id (default: the greedy first token of the un-intervened run). */
  answer?: number;
  /** Greedy tokens generated without and under each knockout (0: none); stops at EOS. */
  generate: number;
}

export interface LayerKnockoutFlow {
  dst: number[];
  src: number[];
  generated: boolean;
  /** Per run: its layer range, the answer's probability and the argmax at the last prompt position, the generated tokens. */
  window: [number, number][];
  p: number[];
  rel_change_pct: number[];
  top: number[];
  tokens: number[][] | null;
}

export interface LayerKnockoutResult {
  answer: { id: number; p_base: number };
  /** Greedy tokens of the un-intervened run (null without generation). */
  base_tokens: number[] | null;
  flows: Record<string, LayerKnockoutFlow>;
}

/** One run with `flow` knocked out in layers lo … hi: the last prompt position's output and, with n > 0, the greedy tokens. */
async function knockedRun(gpu: Gpu, m: Vlm, x: VlmInput, flow: Flow | null, [lo, hi]: [number, number], n: number): Promise<{ out: LastOutput; tokens: number[] | null }> {
  const lm = m.languageModel;
  const seq = x.ids.length;
  const made: Tensor[] = [];
  const inWindow = (t: Tensor | undefined) => (l: number) => (l >= lo && l <= hi ? t : undefined);
  const mask = (q0: number, rows: number) => {
    if (!flow) return undefined;
    if (q0 === 0 && rows === seq) {
      made.push(knockoutMask(gpu, seq, flow));
      return inWindow(made.at(-1));
    }
    if (!flow.generated) return undefined;
    // a new token (position q0) is a DST query: its row blocks every SRC key
    const row = new Float32Array(q0 + rows);
    for (const k of flow.src) row[k] = BLOCKED;
    made.push(gpu.upload(row, [rows, q0 + rows], `knockout(${flow.name}).step`));
    return inWindow(made.at(-1));
  };
  try {
    if (n === 0) return { out: await runLast(gpu, lm, () => m.forward(gpu, x, { mask: mask(0, seq) })), tokens: null };
    let out: LastOutput | undefined;
    const g = await generate(gpu, m, x, n, undefined, { mask, onPrefill: async (h) => void (out = lastOutput(await lastLogits(gpu, lm, h))) });
    return { out: out!, tokens: g.tokens };
  } finally {
    gpu.release(...made);
  }
}

/** Each flow knocked out in each layer range of `o.ranges` (file header): p at the last prompt position and the generated answer. */
export async function knockoutLayers(gpu: Gpu, m: Vlm, x: VlmInput, flows: readonly Flow[], o: LayerKnockoutOptions): Promise<LayerKnockoutResult> {
  const L = m.languageModel.cfg.num_hidden_layers;
  for (const [lo, hi] of o.ranges) if (!(0 <= lo && lo <= hi && hi < L)) throw new UserError(`layer range ${lo}-${hi} is outside 0..${L - 1}`);
  const base = await knockedRun(gpu, m, x, null, [0, L - 1], o.generate);
  const answer = o.answer ?? base.out.top;
  const pBase = base.out.p(answer);
  const out: LayerKnockoutResult = { answer: { id: answer, p_base: pBase }, base_tokens: base.tokens, flows: {} };
  for (const flow of flows) {
    const r: LayerKnockoutFlow = { dst: flow.dst, src: flow.src, generated: !!flow.generated, window: [], p: [], rel_change_pct: [], top: [], tokens: o.generate ? [] : null };
    for (const range of o.ranges) {
      const k = await knockedRun(gpu, m, x, flow, range, o.generate);
      const p = k.out.p(answer);
      r.window.push(range);
      r.p.push(p);
      r.rel_change_pct.push(((p - pBase) / pBase) * 100);
      r.top.push(k.out.top);
      r.tokens?.push(k.tokens!);
    }
    out.flows[flow.name] = r;
  }
  return out;
}
