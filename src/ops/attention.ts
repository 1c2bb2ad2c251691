/**
 * Scaled dot-product attention — what HF's `eager_attention_forward` / `sdpa` compute after
 * the q/k/v projections, with grouped-query heads (`repeat_kv`), causal or bidirectional,
 * self or cross, and an optional additive mask (the hook attention knockout uses).
 *
 *   q [Sq, Hq, D]  k, v [Skv, Hkv, D]  (f32, token-major as the projections write them;
 *                                        [S, H·D] is accepted with `heads` / `kvHeads`)
 *   out [Sq, Hq·D] = softmax(scale · q kᵀ + mask) v, per head; query head h uses kv head
 *                    h / (Hq / Hkv)
 *
 * Causal: query row i sits at absolute position qPos0 + i and sees keys j ≤ qPos0 + i;
 * keys are positions 0..Skv-1 (a KV cache). qPos0 defaults to Skv − Sq: the queries are the
 * last Sq positions (Sq = Skv: plain causal self-attention; Sq = 1: decoding).
 *
 * Mask: f32 [Sq, Skv], added to the scores. 0 keeps an edge; anything ≤ −1e30 blocks it
 * exactly (prefer HF's finfo(f32).min = −3.4028e38: −inf works on lavapipe, but WGSL lets
 * implementations assume finite floats). A query row with every key blocked outputs 0 (HF
 * would give a uniform average there; we never produce NaN).
 *
 * `attentionRow` writes the softmax weights α [Hq, Skv] of one query row (default: the last)
 * with the same scores, for norm-based attention.
 *
 * Kernels: shaders/attention.wgsl (variants 'rows' and 'split', chosen by shape; see its
 * header for the measurements), shaders/attention_row.wgsl; both take their scores from
 * shaders/lib/attention_scores.wgsl.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { isCpuAdapter } from './common.ts';

export interface AttentionScoreOptions {
  /** Mask keys after each query's position (default false: bidirectional / cross). */
  causal?: boolean;
  /** Absolute position of query row 0 (causal only; default kvLen − Sq). */
  qPos0?: number;
  /** Multiplier of q·k (default 1/√D). */
  scale?: number;
  /** Additive f32 mask [Sq, kvLen]: 0 keeps, −inf blocks (compiled in only when given). */
  mask?: Tensor;
  /** Key/value rows in use (default k.shape[0]); k/v may be a larger KV-cache buffer. */
  kvLen?: number;
  /** Query heads, when q is [Sq, Hq·D] (2-D). */
  heads?: number;
  /** Key/value heads, when k/v are [Skv, Hkv·D] (2-D); default `heads`. */
  kvHeads?: number;
  /** Name of the output tensor. */
  name?: string;
}

export type AttentionVariant = 'rows' | 'split';

export interface AttentionOptions extends AttentionScoreOptions {
  /** Kernel variant (default: chosen by shape and adapter, see `pickVariant`); for benchmarks and tests. */
  variant?: AttentionVariant;
  /** 'rows' only: query rows each invocation carries, 1..4 (default: see `pickVariant`). */
  rowsPerInvocation?: number;
}

export interface AttentionRowOptions extends AttentionScoreOptions {
  /** The query row (index into q's rows) whose weights are written (default Sq − 1). */
  query?: number;
}

/** Largest head dim: q · scale and the running output live in per-invocation arrays. */
export const MAX_HEAD_DIM = 128;

const WG_ROWS = 64; // 'rows': invocations per workgroup (each carries R query rows)
const WG_SPLIT = 32; // 'split': invocations sharing one query row's keys
const WG_ROW = 64; // attention_row.wgsl: invocations per head
const TILE = 4; // keys per online-softmax step (shaders/attention.wgsl header: measurements)

interface Geometry {
  Sq: number;
  Skv: number;
  Hq: number;
  Hkv: number;
  D: number;
  qPos0: number;
  scale: number;
  causal: boolean;
}

function geometry(op: string, q: Tensor, k: Tensor, v: Tensor | undefined, opts: AttentionScoreOptions): Geometry {
  const heads = (t: Tensor, h: number | undefined, what: string): [number, number, number] => {
    if (t.dtype !== 'f32') throw new GpuError(`${op}: ${what} must be f32, got ${t}`);
    if (t.shape.length === 3) return t.shape as [number, number, number];
    if (t.shape.length === 2 && h) {
      if (t.shape[1] % h) throw new GpuError(`${op}: ${what} ${t} width is not a multiple of ${h} heads`);
      return [t.shape[0], h, t.shape[1] / h];
    }
    throw new GpuError(`${op}: ${what} ${t} must be [tokens, heads, headDim] (or [tokens, heads·headDim] with the heads option)`);
  };
  const [Sq, Hq, D] = heads(q, opts.heads, 'q');
  const [cap, Hkv, Dk] = heads(k, opts.kvHeads ?? opts.heads, 'k');
  if (Dk !== D) throw new GpuError(`${op}: head dims differ: q ${q} has ${D}, k ${k} has ${Dk}`);
  if (v) {
    const [capv, Hv, Dv] = heads(v, opts.kvHeads ?? opts.heads, 'v');
    if (capv !== cap || Hv !== Hkv || Dv !== D) throw new GpuError(`${op}: v ${v} does not match k ${k}`);
  }
  if (D < 1 || D > MAX_HEAD_DIM) throw new GpuError(`${op}: head dim ${D} is outside 1..${MAX_HEAD_DIM}`);
  if (Hkv < 1 || Hq % Hkv) throw new GpuError(`${op}: ${Hq} query heads are not a multiple of ${Hkv} key/value heads`);
  const Skv = opts.kvLen ?? cap;
  if (!Number.isInteger(Skv) || Skv < 0 || Skv > cap) throw new GpuError(`${op}: kvLen ${Skv} is outside 0..${cap} (rows of ${k})`);
  const causal = !!opts.causal;
  const qPos0 = opts.qPos0 ?? Math.max(0, Skv - Sq);
  if (causal && !(Number.isInteger(qPos0) && qPos0 >= 0)) throw new GpuError(`${op}: qPos0 ${qPos0} must be a non-negative integer`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new GpuError(`${op}: scale ${scale} is not finite`);
  const m = opts.mask;
  if (m && (m.dtype !== 'f32' || m.numel !== Sq * Skv)) throw new GpuError(`${op}: mask ${m} must be f32 [${Sq}, ${Skv}] (queries × keys)`);
  return { Sq, Skv, Hq, Hkv, D, qPos0: causal ? qPos0 : 0, scale, causal };
}

/** Query–key pairs that are not blocked by causality (the work done, for FLOP counts). */
export function visiblePairs(Sq: number, Skv: number, causal: boolean, qPos0 = Math.max(0, Skv - Sq)): number {
  if (!causal) return Sq * Skv;
  let n = 0;
  for (let i = 0; i < Sq; i++) n += Math.min(Skv, qPos0 + i + 1);
  return n;
}

/**
 * Which kernel runs (measurements in the header of shaders/attention.wgsl):
 *   Sq < 64: 'split' — a workgroup per (query row, head) whose invocations share the keys
 *            (decoding, the Q-Former's 32 queries); 'rows' would leave most of its rows idle.
 *   else:    'rows' — an invocation per R query rows of one head (see rowsPerInvocation).
 */
export function pickVariant(Sq: number): AttentionVariant {
  return Sq < 64 ? 'split' : 'rows';
}

/**
 * R, the query rows each 'rows' invocation carries: every k/v load then feeds R rows. CPU
 * adapters take 2 from 128 rows (lavapipe, 600 tokens: 1.4–1.5× R = 1; R = 4 no better);
 * GPUs take 1 (each row costs 2·D floats of registers; not measured on a GPU yet).
 */
export function rowsPerInvocation(gpu: Gpu, Sq: number): number {
  return isCpuAdapter(gpu) && Sq >= 128 ? 2 : 1;
}

function pipelineDefines(g: Geometry, mask: boolean, rows: number) {
  return { D: g.D, ROWS: rows, VEC4: g.D % 4 === 0, CAUSAL: g.causal, MASK: mask };
}

function params(g: Geometry, query: number) {
  return { values: [g.Sq, g.Skv, g.Hq, g.Hkv, g.qPos0, query, g.scale, Math.ceil(g.D / 4)], types: 'uuuuuufu' };
}

/** out [Sq, Hq·D] = softmax(scale · q kᵀ + mask) v per head (see the file header). */
export function attention(gpu: Gpu, q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const g = geometry('attention', q, k, v, opts);
  const { Sq, Skv, Hq, D } = g;
  const out = gpu.tensor([Sq, Hq * D], 'f32', opts.name ?? 'attn_output');
  if (Sq === 0) return out;
  const variant = opts.variant ?? pickVariant(Sq);
  const split = variant === 'split';
  const R = split ? 1 : (opts.rowsPerInvocation ?? rowsPerInvocation(gpu, Sq));
  if (!(Number.isInteger(R) && R >= 1 && R <= 4)) throw new GpuError(`attention: rowsPerInvocation ${R} is outside 1..4`);
  const pairs = visiblePairs(Sq, Skv, g.causal, g.qPos0);
  gpu.dispatch({
    kernel: split ? 'attention.split' : `attention.rows${R}`,
    pipeline: {
      shader: 'attention.wgsl',
      defines: { ...pipelineDefines(g, !!opts.mask, R), SPLIT: split, TILE },
      constants: { WG: split ? WG_SPLIT : WG_ROWS },
    },
    params: params(g, 0),
    bindings: [q, k, v, opts.mask ?? null, out],
    workgroups: split ? [Sq, Hq] : [Math.ceil(Sq / (WG_ROWS * R)), Hq],
    shapes: `Sq=${Sq} Skv=${Skv} Hq=${Hq} Hkv=${g.Hkv} D=${D}${g.causal ? ` causal qPos0=${g.qPos0}` : ''}${opts.mask ? ' mask' : ''}`,
    flops: 4 * pairs * Hq * D,
    bytes: 4 * (2 * Sq * Hq * D + 2 * Skv * g.Hkv * D + (opts.mask ? Sq * Skv : 0)),
  });
  return out;
}

/** alpha [Hq, Skv]: the softmax weights of query row `query` (default the last) for every head. */
export function attentionRow(gpu: Gpu, q: Tensor, k: Tensor, opts: AttentionRowOptions = {}): Tensor {
  const g = geometry('attentionRow', q, k, undefined, opts);
  const { Sq, Skv, Hq, D } = g;
  const query = opts.query ?? Sq - 1;
  if (!Number.isInteger(query) || query < 0 || query >= Sq) throw new GpuError(`attentionRow: query ${query} is outside 0..${Sq - 1} (rows of ${q})`);
  const alpha = gpu.tensor([Hq, Skv], 'f32', opts.name ?? 'attn_weights');
  gpu.dispatch({
    kernel: 'attention.row',
    pipeline: { shader: 'attention_row.wgsl', defines: pipelineDefines(g, !!opts.mask, 1), constants: { WG: WG_ROW } },
    params: params(g, query),
    bindings: [q, k, null, opts.mask ?? null, alpha],
    workgroups: [Hq],
    shapes: `query=${query} Skv=${Skv} Hq=${Hq} Hkv=${g.Hkv} D=${D}${g.causal ? ` causal qPos0=${g.qPos0}` : ''}${opts.mask ? ' mask' : ''}`,
    flops: 2 * Skv * Hq * D,
    bytes: 4 * (Hq * D + Skv * g.Hkv * D + (opts.mask ? Skv : 0) + 2 * Hq * Skv),
  });
  return alpha;
}
