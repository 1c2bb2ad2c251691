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
 * Kernels (`pickVariant` says which runs where):
 *   CPU class — shaders/attention.wgsl, variants 'rows' and 'split' (its header has the
 *               lavapipe measurements);
 *   GPU class — shaders/attention_flash.wgsl: 'flash' (prefill) and 'decode' (pass 1 of
 *               flash-decoding, then shaders/attention_decode_merge.wgsl);
 *   shaders/attention_row.wgsl for `attentionRow`. All take their scores from
 *   shaders/lib/attention_scores.wgsl, and the value side from lib/attention_values.wgsl.
 */
import type { Gpu } from '../gpu/context.ts';
import type { PipelineKey } from '../gpu/pipelines.ts';
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

export type AttentionVariant = 'rows' | 'split' | 'flash' | 'decode';

/** 'flash' / 'decode': query rows and keys per workgroup tile (shaders/attention_flash.wgsl). */
export interface FlashTile {
  rows: number;
  keys: number;
}

export interface AttentionOptions extends AttentionScoreOptions {
  /** Kernel variant (default: chosen by shape and adapter, see `pickVariant`); any variant runs on any adapter, for benchmarks and tests. */
  variant?: AttentionVariant;
  /** 'rows' only: query rows each invocation carries, 1..4 (default: see `rowsPerInvocation`). */
  rowsPerInvocation?: number;
  /** 'flash' / 'decode' only: the tile (default: `flashTile`); it must fit the device's workgroup memory. */
  tile?: FlashTile;
  /** 'decode' only: chunks the keys are split into, one workgroup each (default: `decodeChunks`). */
  chunks?: number;
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

/** 'decode' for at most this many query rows on the GPU class (generation: 1; the Q-Former: 32). */
export const DECODE_MAX_ROWS = 32;

/**
 * Which kernel runs, by kernel class (src/gpu/adapter-class.ts) and shape.
 * CPU class (measurements in the header of shaders/attention.wgsl):
 *   Sq < 64: 'split' — a workgroup per (query row, head) whose invocations share the keys
 *            (decoding, the Q-Former's 32 queries); 'rows' would leave most of its rows idle.
 *   else:    'rows' — an invocation per R query rows of one head (see rowsPerInvocation).
 * GPU class (shaders/attention_flash.wgsl; not yet timed on a GPU — see its header):
 *   Sq ≤ 32: 'decode' — keys split over `decodeChunks` workgroups, then a merge pass: one
 *            row (or 32) per head would otherwise be one workgroup per head, a few dozen
 *            on a GPU with a hundred-odd cores;
 *   else:    'flash' — Q tiles per workgroup, K/V tiles in workgroup memory.
 *   Either falls back to the CPU-class choice when no tile fits the workgroup memory
 *   (`flashTile`; D = head dim, default the largest).
 * Measured on lavapipe with the variant forced (2 shared cores, one run; GFLOP/s =
 * 4·pairs·Hq·D / time; more in the header of shaders/attention_flash.wgsl):
 *   CLIP-L 577×577, 16 heads, D=64:          flash 1.07, rows R=2 1.53
 *   LLaMA prefill 600, 32 heads, D=128, causal: flash 0.91, rows R=2 1.31
 *   decode 1×600, 32 heads, D=128:            decode 0.10, split 0.74
 * so the GPU-class variants are for GPUs only; lavapipe runs them for correctness.
 */
export function pickVariant(gpu: Gpu, Sq: number, D = MAX_HEAD_DIM): AttentionVariant {
  const cpuChoice = Sq < 64 ? 'split' : 'rows';
  if (isCpuAdapter(gpu)) return cpuChoice;
  const variant = Sq <= DECODE_MAX_ROWS ? 'decode' : 'flash';
  return flashTile(gpu, variant, Sq, D) ? variant : cpuChoice;
}

/** Tiles by preference (largest first); 'decode' sizes the rows to Sq so one query row does not pay for 64. */
export function tileCandidates(variant: 'flash' | 'decode', Sq: number): FlashTile[] {
  const t = (rows: number, keys: number[]) => keys.map((k) => ({ rows, keys: k }));
  if (variant === 'flash') return [...t(64, [32]), ...t(32, [32]), ...t(16, [32, 16])];
  if (Sq === 1) return t(1, [64, 32, 16]);
  if (Sq <= 8) return t(8, [64, 32, 16]);
  return [...t(32, [32]), ...t(16, [32, 16])];
}

/** The invocation layout of a tile (the defines of shaders/attention_flash.wgsl) and its workgroup memory. */
export function flashLayout(D: number, tile: FlashTile, split: boolean) {
  const { rows: BQ, keys: BK } = tile;
  const WG = BQ === 1 ? BK : 128;
  const RGS = Math.min(BQ, 16); // score step: row groups × key lanes
  const KL = WG / RGS;
  const SR = BQ / RGS;
  const SK = BK / KL;
  const DV4 = Math.ceil(D / 4);
  const CL = Math.min(WG, 2 ** Math.ceil(Math.log2(Math.ceil(DV4 / 4)))); // value step: ≤ 4 vec4 columns each
  const OC = Math.ceil(DV4 / CL);
  const RGO = Math.min(BQ, WG / CL);
  const KG = WG / (CL * RGO); // the invocations left over split the keys
  const OR = BQ / RGO;
  const ok = [KL, SR, SK, KG, OR].every((x) => Number.isInteger(x) && x >= 1) && KG <= BK && BQ <= WG;
  const DP = DV4 | 1;
  const bytes = 16 * (BQ * DP + Math.max(BK * DP, WG * OC)) + 4 * (Math.max(BQ * (BK + 1), KG * BQ) + BQ * KL + BQ * (split ? 2 : 1));
  return { ok, bytes, WG, defines: { BQ, BK, WG, KL, SR, SK, CL, OC, KG, OR } };
}

function tileFits(gpu: Gpu, D: number, tile: FlashTile, split: boolean): boolean {
  const l = flashLayout(D, tile, split);
  return l.ok && l.bytes <= gpu.limits.maxComputeWorkgroupStorageSize && l.WG <= gpu.limits.maxComputeInvocationsPerWorkgroup && l.WG <= gpu.limits.maxComputeWorkgroupSizeX;
}

/**
 * The largest tile that fits the device (maxComputeWorkgroupStorageSize: 48 KiB on NVIDIA,
 * 32 KiB on lavapipe, 16 KiB the WebGPU minimum), or undefined. 'flash': 64 × 32 (rows ×
 * keys), 32 × 32, 16 × 32, 16 × 16; 'decode': rows 1, 8 or 32 by Sq, 64 keys or fewer.
 */
export function flashTile(gpu: Gpu, variant: 'flash' | 'decode', Sq: number, D: number): FlashTile | undefined {
  return tileCandidates(variant, Sq).find((t) => tileFits(gpu, D, t, variant === 'decode'));
}

/** 'decode': about this many workgroups in all (a few per core of a 100-odd-core GPU). */
const DECODE_WORKGROUPS = 512;

/** 'decode': chunks of keys per (row block, head) — enough workgroups to fill a GPU, at least one tile of keys each. */
export function decodeChunks(rowBlocks: number, Hq: number, Skv: number, keysPerTile: number): number {
  return Math.max(1, Math.min(Math.ceil(DECODE_WORKGROUPS / (rowBlocks * Hq)), Math.ceil(Skv / keysPerTile)));
}

const WG_MERGE = 32; // attention_decode_merge.wgsl: invocations per (row, head); D ≤ 128 is 32 vec4s

/**
 * R, the query rows each 'rows' invocation carries: every k/v load then feeds R rows. CPU
 * adapters take 2 from 128 rows (lavapipe, 600 tokens: 1.4–1.5× R = 1; R = 4 no better);
 * GPUs take 1 (each row costs 2·D floats of registers; not measured on a GPU yet).
 */
export function rowsPerInvocation(gpu: Gpu, Sq: number): number {
  return isCpuAdapter(gpu) && Sq >= 128 ? 2 : 1;
}

function pipelineDefines(g: Pick<Geometry, 'D' | 'causal'>, mask: boolean, rows: number) {
  return { D: g.D, ROWS: rows, VEC4: g.D % 4 === 0, CAUSAL: g.causal, MASK: mask };
}

/** The pipeline of 'flash' / 'decode' (`split`) with this tile (the compile test builds every one). */
export function flashPipeline(D: number, causal: boolean, mask: boolean, tile: FlashTile, split: boolean): PipelineKey {
  return { shader: 'attention_flash.wgsl', defines: { ...pipelineDefines({ D, causal }, mask, 1), SPLIT: split, ...flashLayout(D, tile, split).defines } };
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
  const variant = opts.variant ?? pickVariant(gpu, Sq, D);
  if (variant === 'flash' || variant === 'decode') {
    flashAttention(gpu, g, q, k, v, out, variant, opts);
    return out;
  }
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

function shapesOf(g: Geometry, mask: boolean): string {
  return `Sq=${g.Sq} Skv=${g.Skv} Hq=${g.Hq} Hkv=${g.Hkv} D=${g.D}${g.causal ? ` causal qPos0=${g.qPos0}` : ''}${mask ? ' mask' : ''}`;
}

/** 'flash' (one dispatch) or 'decode' (partial states per key chunk, then the merge). */
function flashAttention(gpu: Gpu, g: Geometry, q: Tensor, k: Tensor, v: Tensor, out: Tensor, variant: 'flash' | 'decode', opts: AttentionOptions): void {
  const { Sq, Skv, Hq, D } = g;
  const split = variant === 'decode';
  const tile = opts.tile ?? flashTile(gpu, variant, Sq, D);
  if (tile && !flashLayout(D, tile, split).ok) throw new GpuError(`attention: no '${variant}' ${tile.rows}×${tile.keys} tile: its rows and keys do not divide into the workgroup's invocations (see flashLayout)`);
  if (!tile || !tileFits(gpu, D, tile, split)) {
    const want = tile ? `${tile.rows}×${tile.keys} tile (${flashLayout(D, tile, split).bytes} bytes)` : 'tile';
    throw new GpuError(`attention: no '${variant}' ${want} fits this device's ${gpu.limits.maxComputeWorkgroupStorageSize}-byte workgroup memory at D=${D}`);
  }
  const rowBlocks = Math.ceil(Sq / tile.rows);
  const chunks = split ? (opts.chunks ?? decodeChunks(rowBlocks, Hq, Skv, tile.keys)) : 1;
  if (!(Number.isInteger(chunks) && chunks >= 1)) throw new GpuError(`attention: chunks ${chunks} must be a positive integer`);
  const mask = !!opts.mask;
  const pairs = visiblePairs(Sq, Skv, g.causal, g.qPos0);
  const DV4 = Math.ceil(D / 4);
  const partO = split ? gpu.tensor([Sq, Hq, chunks, 4 * DV4], 'f32', 'attn_partial_o') : undefined;
  const partML = split ? gpu.tensor([Sq, Hq, chunks, 2], 'f32', 'attn_partial_ml') : undefined;
  gpu.dispatch({
    kernel: `attention.${variant}`,
    pipeline: flashPipeline(D, g.causal, mask, tile, split),
    params: params(g, 0),
    bindings: [q, k, v, opts.mask ?? null, split ? null : out, partO ?? null, partML ?? null],
    workgroups: [rowBlocks, Hq, chunks],
    shapes: `${shapesOf(g, mask)} tile=${tile.rows}x${tile.keys}${split ? ` chunks=${chunks}` : ''}`,
    flops: 4 * pairs * Hq * D,
    // every workgroup reads its keys' k and v rows (GQA heads re-read them, mostly from cache)
    bytes: 4 * (Sq * Hq * D + rowBlocks * Hq * 2 * Skv * D + (mask ? Sq * Skv : 0) + (split ? Sq * Hq * chunks * (4 * DV4 + 2) : Sq * Hq * D)),
  });
  if (!split) return;
  gpu.dispatch({
    kernel: 'attention.decode.merge',
    pipeline: { shader: 'attention_decode_merge.wgsl', defines: { D }, constants: { WG: WG_MERGE } },
    params: { values: [Sq, Hq, chunks, DV4] },
    bindings: [partO!, partML!, out],
    workgroups: [Sq, Hq],
    shapes: `Sq=${Sq} Hq=${Hq} D=${D} chunks=${chunks}`,
    flops: 3 * Sq * Hq * chunks * D,
    bytes: 4 * (Sq * Hq * chunks * (4 * DV4 + 2) + Sq * Hq * D),
  });
  gpu.release(partO, partML);
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
