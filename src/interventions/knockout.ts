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
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { actName } from '../hooks/names.ts';
import type { Vlm, VlmInput } from '../models/vlm.ts';
import { runWithCache } from '../probes/cache.ts';
import { runLast } from './answer.ts';

/** Blocks attention; HF's finfo(float32).min (the attention op treats ≤ −1e30 as exactly blocked). */
export const BLOCKED = -3.4028234663852886e38;

export interface Flow {
  /** As given, normalised to `dst<-src`. */
  name: string;
  dst: number[];
  src: number[];
}

/**
 * `--flow study`: the six flows of the information-flow study, image→question, image→last,
 * question→last, last→last (the last position's attention to itself), object→question and
 * image-without-object→question (the last two need an object box).
 */
export const STUDY_FLOWS: readonly string[] = ['question<-image', 'last<-image', 'last<-question', 'last<-last', 'question<-object', 'question<-image-object'];

/** The `--flow` list with the preset `study` written out (in place, duplicates dropped). */
export function expandFlows(specs: readonly string[]): string[] {
  return [...new Set(specs.flatMap((s) => (s.trim() === 'study' ? STUDY_FLOWS : [s])))];
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
