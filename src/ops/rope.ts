/**
 * Rotary position embedding in HF's rotate-half layout (`LlamaRotaryEmbedding`,
 * `apply_rotary_pos_emb` in modeling_llama.py), for q or k [seq, heads, head_dim] (or any
 * shape [seq, ..., head_dim], e.g. the [seq, hidden] output of q_proj) at positions
 * pos0 .. pos0 + seq − 1, so decoding with a KV cache passes pos0 = tokens cached.
 * Kernel: shaders/rope.wgsl, reading a cos/sin table built here once per model.
 *
 * The table reproduces HF's float32 arithmetic exactly:
 *   inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))   (f32 at each step)
 *   freqs    = inv_freq ⊗ position_ids.float()                          (one f32 product)
 *   cos, sin = freqs.cos(), freqs.sin()                                  (from f64, rounded to f32)
 * Against torch 1.13 (test/fixtures/rope) inv_freq and freqs agree bit for bit and cos/sin
 * within 1 ulp (torch's vectorised cos/sin are not correctly rounded; ours are).
 * HF then casts cos/sin to the activation dtype (fp16 for fp16 checkpoints); phaselens
 * keeps activations in f32 and does not.
 *
 * RoPE scaling (`rope_type` other than "default") changes inv_freq only. Implemented:
 * "llama3" (Llama-3.x, `_compute_llama3_parameters` of modeling_rope_utils.py): with
 * wavelen = 2π / inv_freq and the original context c, a frequency whose wavelength is
 * shorter than c / high_freq_factor is kept, one longer than c / low_freq_factor is divided
 * by `factor`, and one between is interpolated with s = (c / wavelen − low) / (high − low):
 * (1 − s) · inv / factor + s · inv; the attention scaling stays 1. Computed in f32 in
 * torch's order (a scalar divided by a tensor is torch's reciprocal times the scalar).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elementGrid, requireF32 } from './common.ts';

export interface RopeTable {
  /** [maxPos, headDim / 2, 2] f32: (cos, sin) pairs. */
  table: Tensor;
  headDim: number;
  maxPos: number;
  theta: number;
}

/** HF's `rope_type: "llama3"` parameters (config `rope_parameters` / `rope_scaling`). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** The context the model was pre-trained with (8192 for Llama-3). */
  originalMaxPositionEmbeddings: number;
}

/** RoPE scaling other than plain RoPE (the file header), or null. */
export type RopeScaling = Llama3RopeScaling | null;

/** HF's inv_freq in f32: 1 / theta^(2i / headDim), i < headDim / 2, then the scaling (header). */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling = null): Float32Array {
  const f = Math.fround;
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = f(f(2 * i) / headDim); // arange(0, dim, 2).float() / dim
    const power = f(theta ** exponent); // base ** tensor, in f32
    inv[i] = f(1 / power);
  }
  return scaling ? llama3InvFreq(inv, scaling) : inv;
}

function llama3InvFreq(inv: Float32Array, s: Llama3RopeScaling): Float32Array {
  const f = Math.fround;
  const old = s.originalMaxPositionEmbeddings;
  const lowWavelen = f(old / s.lowFreqFactor);
  const highWavelen = f(old / s.highFreqFactor);
  const factor = f(s.factor);
  const twoPi = f(2 * Math.PI);
  return inv.map((x) => {
    const wavelen = f(f(1 / x) * twoPi);
    const scaled = wavelen > lowWavelen ? f(x / factor) : x;
    if (wavelen < highWavelen || wavelen > lowWavelen) return scaled;
    const smooth = f(f(f(f(1 / wavelen) * old) - f(s.lowFreqFactor)) / f(s.highFreqFactor - s.lowFreqFactor));
    return f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
  });
}

/** cos and sin of the f32 angle fround(p · inv_freq[i]): [maxPos, headDim / 2] each, row-major. */
export function ropeCosSin(headDim: number, maxPos: number, theta: number, scaling: RopeScaling = null): { cos: Float32Array; sin: Float32Array } {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2) throw new GpuError(`rope: head_dim must be a positive even integer, got ${headDim}`);
  const half = headDim / 2;
  const inv = ropeInvFreq(headDim, theta, scaling);
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let pos = 0; pos < maxPos; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * inv[i]);
      cos[pos * half + i] = Math.cos(angle);
      sin[pos * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Uploads the cos/sin table for positions 0 .. maxPos − 1 (HF: max_position_embeddings). */
export function ropeTable(gpu: Gpu, opts: { headDim: number; maxPos: number; theta?: number; scaling?: RopeScaling; name?: string }): RopeTable {
  const { headDim, maxPos } = opts;
  const theta = opts.theta ?? 10000;
  if (!Number.isInteger(maxPos) || maxPos <= 0) throw new GpuError(`rope: maxPos must be a positive integer, got ${maxPos}`);
  const { cos, sin } = ropeCosSin(headDim, maxPos, theta, opts.scaling ?? null);
  const pairs = new Float32Array(2 * cos.length);
  for (let k = 0; k < cos.length; k++) {
    pairs[2 * k] = cos[k];
    pairs[2 * k + 1] = sin[k];
  }
  const table = gpu.upload(pairs, [maxPos, headDim / 2, 2], opts.name ?? `rope.cos_sin(θ=${theta}${opts.scaling ? `, ${opts.scaling.type}` : ''})`);
  return { table, headDim, maxPos, theta };
}

export interface RopeOptions {
  /** Position of the first token (default 0). */
  pos0?: number;
  /** Rotate x itself and return it (default: a new tensor). */
  inPlace?: boolean;
  name?: string;
}

/** Heads per token of x [seq, ..., head_dim] (everything between), after checking x and the positions. */
function ropeHeads(x: Tensor, rt: RopeTable, pos0: number): number {
  requireF32('rope', 'x', x);
  const seq = x.shape[0] ?? 0;
  const hd = rt.headDim;
  if (x.shape.length < 2 || seq === 0 || x.numel % (seq * hd) !== 0 || x.shape[x.shape.length - 1] % hd !== 0) {
    throw new GpuError(`rope: ${x} is not [seq, heads, ${hd}] (or [seq, heads·${hd}])`);
  }
  if (!Number.isInteger(pos0) || pos0 < 0) throw new GpuError(`rope: pos0 must be a non-negative integer, got ${pos0}`);
  if (pos0 + seq > rt.maxPos) throw new GpuError(`rope: positions ${pos0}..${pos0 + seq - 1} exceed the table's ${rt.maxPos} positions (max_position_embeddings)`);
  return x.numel / (seq * hd);
}

/** Applies the rotation to x [seq, ..., head_dim] f32 (heads = everything between). */
export function rope(gpu: Gpu, x: Tensor, rt: RopeTable, opts: RopeOptions = {}): Tensor {
  const pos0 = opts.pos0 ?? 0;
  const heads = ropeHeads(x, rt, pos0);
  const seq = x.shape[0];
  const hd = rt.headDim;
  const y = opts.inPlace ? x : gpu.tensor(x.shape, 'f32', opts.name ?? `rope(${x.name})`);
  const n = (seq * heads * hd) / 2;
  const WG = 64;
  gpu.dispatch({
    kernel: 'rope',
    pipeline: { shader: 'rope.wgsl', defines: { IN_PLACE: !!opts.inPlace, PAIR: false }, constants: { WG } },
    params: { values: [seq, heads, hd / 2, pos0, 0] },
    bindings: opts.inPlace ? [x, rt.table] : [x, rt.table, y],
    workgroups: elementGrid(gpu, n, WG),
    shapes: `seq=${seq} heads=${heads} head_dim=${hd} pos0=${pos0}`,
    flops: 6 * n,
    bytes: 2 * 4 * x.numel + 8 * seq * (hd / 2),
  });
  return y;
}

/** Rotates q and k (same seq, any heads each) in place, in one dispatch; returns nothing new. */
export function ropeQk(gpu: Gpu, q: Tensor, k: Tensor, rt: RopeTable, pos0 = 0): void {
  const hq = ropeHeads(q, rt, pos0);
  const hk = ropeHeads(k, rt, pos0);
  const seq = q.shape[0];
  if (k.shape[0] !== seq) throw new GpuError(`rope: ${q} and ${k} have different numbers of tokens`);
  if (k.buffer === q.buffer) throw new GpuError(`rope: ${q} and ${k} share a buffer (both are written)`);
  const hd = rt.headDim;
  const n = (seq * (hq + hk) * hd) / 2;
  const WG = 64;
  gpu.dispatch({
    kernel: 'rope.qk',
    pipeline: { shader: 'rope.wgsl', defines: { IN_PLACE: true, PAIR: true }, constants: { WG } },
    params: { values: [seq, hq, hd / 2, pos0, hk] },
    bindings: [q, rt.table, k],
    workgroups: elementGrid(gpu, n, WG),
    shapes: `seq=${seq} heads=${hq}+${hk} head_dim=${hd} pos0=${pos0}`,
    flops: 6 * n,
    bytes: 2 * 4 * (q.numel + k.numel) + 8 * seq * (hd / 2),
  });
}
