/**
 * Norm-based attention (Kobayashi et al. 2020; DESIGN.md "Exact metric definitions" 3) of
 * ONE query row of one attention layer, for every key j — computed from that row's weights
 * in the attention pass, never from stored attention maps:
 *
 *   f^h(x_j) = (x_j W_V^h + b_V^h) W_O^h = v_j^{g(h)} W_O^hᵀ        (d-vector)
 *   head[h, j] = ‖α^h_j f^h(x_j)‖        layer[j] = ‖Σ_h α^h_j f^h(x_j)‖
 *
 *   alpha [Hq, Skv] f32   softmax weights of the query row (attentionRow in ./attention.ts)
 *   v     [cap, Hkv, Dh] or [cap, Hkv·Dh] f32   the value projection (bias included), rows
 *                         0..Skv−1 used (a KV cache may be larger); Hkv is read off v
 *   wO    [d, Hq·Dh] f32 | f16   HF o_proj / out_proj weight ([out, in])
 *   → head [Hq, Skv], layer [Skv] f32 (or rows of larger result tensors, see options)
 *
 * Query head h reads value head g(h) = h / (Hq / Hkv) (HF repeat_kv). The output
 * projection's bias (CLIP's out_proj has one, LLaMA's o_proj none) is excluded by
 * definition: it is the same for every key, so it is not part of any token's f(x_j).
 *
 * How (shaders/norm_attention.wgsl):
 *   layer: u = concat_h(α^h_j v_j^{g(h)}) [Skv, Hq·Dh]; y = u W_Oᵀ with `linear`
 *          (matmul.wgsl), so y_j = Σ_h α^h_j f^h(x_j); then row norms. 2·Skv·Hq·Dh·d FLOPs.
 *   head:  ‖f^h(x_j)‖² = v_jᵀ G_h v_j with G_h = W_O^hᵀ W_O^h [Dh, Dh] (`headGram`), so
 *          2·Skv·Hq·Dh² FLOPs instead of 2·Skv·Hq·Dh·d (32× fewer for LLaMA-7B). G depends
 *          on the weight only: pass `gram` to reuse it across inputs (2 MiB per LLaMA-7B
 *          layer); without it, it is computed (2·d·Hq·Dh² FLOPs) and released per call.
 *          Precision: the quadratic form is exact algebra, but in f32 it cancels when v lies
 *          near W_O^h's smallest singular directions. Measured against the f64 definition
 *          (d = 512, Dh = 64, singular values of W_O^h geometric from 1 to 1/κ): random v
 *          ≤ 6e-7 per element at any κ ≤ 1000; v along the smallest singular vector:
 *          relErr (w.r.t. the tensor's max) 2e-7 / 3e-6 / 1.5e-5 at κ = 10 / 100 / 1000,
 *          per element 1e-6 / 2e-4 / 8e-3 (those elements are ~1/κ of the largest).
 *          LLaMA-7B shape (Hq = 32, Dh = 128, d = 4096, Skv = 600, random f16 W_O):
 *          head relErr 1.2e-6, layer 3e-8.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { MAX_HEAD_DIM } from './attention.ts';
import { elemBytes, elementGrid, isCpuAdapter, requireF32, requireWeight, rowWorkgroup } from './common.ts';
import { linear } from './linear.ts';

export interface NormAttentionOptions {
  /** W_O's per-head Gram matrices [Hq, Dh, Dh] from `headGram(gpu, wO, Hq)`, to reuse. */
  gram?: Tensor;
  /** Write head norms here: [Hq, Skv] or [R, Hq, Skv] (default: a new [Hq, Skv]). */
  head?: Tensor;
  /** Write layer norms here: [Skv] or [R, Skv] (default: a new [Skv]). */
  layer?: Tensor;
  /** Row of `head` / `layer` written (default 0), e.g. the layer index of an [L, ...] result. */
  row?: number;
  /** Prefix of the tensors created (default 'norm_attention'). */
  name?: string;
}

export interface NormAttentionResult {
  /** [Hq, Skv] (or the `head` option): ‖α^h_j f^h(x_j)‖ */
  head: Tensor;
  /** [Skv] (or the `layer` option): ‖Σ_h α^h_j f^h(x_j)‖ */
  layer: Tensor;
}

const WG_ELEM = 256; // WEIGHTED: invocations per workgroup
const GRAM_WG = 8; // GRAM: invocations per workgroup side, 4×4 outputs each
const J = 8; // HEADS: keys per workgroup (norm_attention.wgsl)

interface Geometry {
  Skv: number;
  Hq: number;
  Hkv: number;
  Dh: number;
  d: number;
}

function headGeometry(op: string, wO: Tensor, Hq: number): { Dh: number; d: number } {
  requireWeight(op, 'wO', wO);
  if (wO.shape.length !== 2) throw new GpuError(`${op}: wO ${wO} must be [d, Hq·Dh] (HF [out, in] layout)`);
  const [d, inF] = wO.shape;
  if (!(Number.isInteger(Hq) && Hq > 0) || inF % Hq) throw new GpuError(`${op}: wO ${wO} input width ${inF} is not a multiple of ${Hq} heads`);
  const Dh = inF / Hq;
  if (Dh < 1 || Dh > MAX_HEAD_DIM) throw new GpuError(`${op}: head dim ${Dh} (wO ${wO} / ${Hq} heads) is outside 1..${MAX_HEAD_DIM}`);
  return { Dh, d };
}

function geometry(alpha: Tensor, v: Tensor, wO: Tensor): Geometry {
  const op = 'normAttention';
  requireF32(op, 'alpha', alpha);
  requireF32(op, 'v', v);
  if (alpha.shape.length !== 2) throw new GpuError(`${op}: alpha ${alpha} must be [Hq, Skv] (attentionRow's output)`);
  const [Hq, Skv] = alpha.shape;
  const { Dh, d } = headGeometry(op, wO, Hq);
  let Hkv: number;
  if (v.shape.length === 3) {
    if (v.shape[2] !== Dh) throw new GpuError(`${op}: v ${v} head dim ${v.shape[2]} ≠ ${Dh} (wO ${wO} / ${Hq} heads)`);
    Hkv = v.shape[1];
  } else if (v.shape.length === 2) {
    if (v.shape[1] % Dh) throw new GpuError(`${op}: v ${v} width is not a multiple of the head dim ${Dh} (wO ${wO} / ${Hq} heads)`);
    Hkv = v.shape[1] / Dh;
  } else {
    throw new GpuError(`${op}: v ${v} must be [tokens, Hkv, Dh] or [tokens, Hkv·Dh]`);
  }
  if (Hkv < 1 || Hq % Hkv) throw new GpuError(`${op}: ${Hq} query heads (alpha ${alpha}) are not a multiple of ${Hkv} value heads (v ${v})`);
  if (v.shape[0] < Skv) throw new GpuError(`${op}: v ${v} has fewer rows than the ${Skv} keys of alpha ${alpha}`);
  return { Skv, Hq, Hkv, Dh, d };
}

function params(g: Geometry, headAt = 0, layerAt = 0) {
  return { values: [g.Skv, g.Hq, g.Hkv, g.Dh, g.d, headAt, layerAt] };
}

/** G_h = W_O^hᵀ W_O^h for every head: [Hq, Dh, Dh] f32, from wO [d, Hq·Dh] (f32 | f16). */
export function headGram(gpu: Gpu, wO: Tensor, heads: number, name = `${wO.name}.head_gram`): Tensor {
  const { Dh, d } = headGeometry('headGram', wO, heads);
  const gram = gpu.tensor([heads, Dh, Dh], 'f32', name);
  const blocks = Math.ceil(Dh / 4 / GRAM_WG);
  gpu.dispatch({
    kernel: `norm_attention.gram.${wO.dtype}`,
    pipeline: {
      shader: 'norm_attention.wgsl',
      defines: { STAGE_GRAM: true, VEC4: Dh % 4 === 0, W_F16: wO.dtype === 'f16', W_BINDING: 3 },
      constants: { WG_X: GRAM_WG, WG_Y: GRAM_WG },
    },
    params: params({ Skv: 0, Hq: heads, Hkv: heads, Dh, d }),
    bindings: [null, null, wO, gram],
    workgroups: [blocks, blocks, heads],
    shapes: `d=${d} Hq=${heads} Dh=${Dh}`,
    flops: 2 * d * heads * Dh * Dh,
    bytes: elemBytes(wO) * wO.numel * 2 + 4 * gram.numel,
  });
  return gram;
}

/** Records head [Hq, Skv] and layer [Skv] norms of one query row (see the file header). */
export function normAttention(gpu: Gpu, alpha: Tensor, v: Tensor, wO: Tensor, opts: NormAttentionOptions = {}): NormAttentionResult {
  const g = geometry(alpha, v, wO);
  const { Skv, Hq, Dh, d } = g;
  const prefix = opts.name ?? 'norm_attention';
  const row = opts.row ?? 0;
  const head = opts.head ?? gpu.tensor([Hq, Skv], 'f32', `${prefix}.head`);
  const layer = opts.layer ?? gpu.tensor([Skv], 'f32', `${prefix}.layer`);
  const fits = (t: Tensor, inner: number[], what: string) => {
    requireF32('normAttention', what, t);
    const ok = t.shape.length >= inner.length && t.shape.slice(-inner.length).every((s, i) => s === inner[i]);
    const rows = ok ? t.numel / inner.reduce((a, b) => a * b, 1) : 0;
    if (!ok || t.shape.length > inner.length + 1) throw new GpuError(`normAttention: ${what} ${t} must be [${inner.join(', ')}] or [rows, ${inner.join(', ')}]`);
    if (!(Number.isInteger(row) && row >= 0 && row < rows)) throw new GpuError(`normAttention: row ${row} is outside 0..${rows - 1} of ${what} ${t}`);
  };
  fits(head, [Hq, Skv], 'head');
  fits(layer, [Skv], 'layer');
  if (opts.gram && (opts.gram.dtype !== 'f32' || opts.gram.shape.join() !== [Hq, Dh, Dh].join())) {
    throw new GpuError(`normAttention: gram ${opts.gram} must be f32 [${Hq}, ${Dh}, ${Dh}] (headGram of ${wO})`);
  }
  if (Skv === 0) return { head, layer };
  const p = params(g, row * Hq * Skv, row * Skv);
  const shapes = `Skv=${Skv} Hq=${Hq} Hkv=${g.Hkv} Dh=${Dh} d=${d}`;

  // layer: y = concat_h(α^h v^{g(h)}) W_Oᵀ, then row norms
  const u = gpu.tensor([Skv, Hq * Dh], 'f32', `${prefix}.weighted_values`);
  gpu.dispatch({
    kernel: 'norm_attention.weighted',
    pipeline: { shader: 'norm_attention.wgsl', defines: { STAGE_WEIGHTED: true }, constants: { WG: WG_ELEM } },
    params: p,
    bindings: [alpha, v, null, null, u],
    workgroups: elementGrid(gpu, u.numel, WG_ELEM),
    shapes,
    flops: u.numel,
    bytes: 4 * (2 * u.numel + alpha.numel),
  });
  const y = linear(gpu, u, wO, { name: `${prefix}.transformed` });
  gpu.dispatch({
    kernel: 'norm_attention.row_norm',
    pipeline: { shader: 'norm_attention.wgsl', defines: { STAGE_ROW_NORM: true }, constants: { WG: rowWorkgroup(gpu, d) } },
    params: p,
    bindings: [null, null, null, null, null, y, null, layer],
    workgroups: gpu.grid(Skv),
    shapes,
    flops: 2 * Skv * d,
    bytes: 4 * (Skv * d + Skv),
  });
  gpu.release(u, y);

  // head: α · sqrt(vᵀ G_h v)
  const gram = opts.gram ?? headGram(gpu, wO, Hq, `${prefix}.head_gram`);
  gpu.dispatch({
    kernel: 'norm_attention.heads',
    pipeline: { shader: 'norm_attention.wgsl', defines: { STAGE_HEADS: true }, constants: { WG: isCpuAdapter(gpu) ? 32 : 64 } },
    params: p,
    bindings: [alpha, v, null, gram, null, null, head],
    workgroups: [Math.ceil(Skv / J), Hq],
    shapes,
    flops: 2 * Skv * Hq * Dh * (Dh + 1),
    bytes: 4 * (Skv * g.Hkv * Dh + 2 * Hq * Skv + Math.ceil(Skv / J) * Hq * Dh * Dh),
  });
  if (!opts.gram) gpu.release(gram);
  return { head, layer };
}
