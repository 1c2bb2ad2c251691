/**
 * 2-D convolution — HF/torch `nn.Conv2d` (with an explicit, possibly asymmetric zero
 * padding as `F.pad` + Conv2d give it) — as im2col (`unfold`, shaders/im2col.wgsl) + the
 * matmul of `linear` with the weight viewed as [D, C·KH·KW]:
 *   x [H, W, C] f32 (channels last: the rows of the matmul), weight [D, C, KH, KW] f32|f16,
 *   bias [D] optional → [Ho, Wo, D] f32, Ho = ⌊(H + top + bottom − KH) / S⌋ + 1 (Wo alike)
 * A 1×1 stride-1 conv without padding is `linear` on x as it is. The unfolded patches of a
 * large image would not fit one storage binding (512² × 128 channels × 3×3 is 1.2 GB), so
 * the output rows go in chunks whose patches stay under `maxPatchBytes` (default: the
 * device's binding limit, at most 128 MiB).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elementGrid, requireF32, requireWeight, view } from './common.ts';
import { linear } from './linear.ts';

const WG = 256;
const MAX_PATCH_BYTES = 128 * 2 ** 20;

/** [top, left, bottom, right] zero padding, in pixels. */
export type Padding = [number, number, number, number];

export interface UnfoldOptions {
  /** x is [C, H, W] ('chw', pixels) or [H, W, C] ('hwc', activations). */
  layout: 'chw' | 'hwc';
  kernel: [number, number];
  stride: number;
  pad?: Padding;
  /** Output rows [row0, row0 + rows) only (default: all). */
  row0?: number;
  rows?: number;
  name?: string;
}

/** The output size of a convolution over `size` pixels. */
export function convOut(size: number, kernel: number, stride: number, before: number, after: number): number {
  return Math.floor((size + before + after - kernel) / stride) + 1;
}

function dims(op: string, x: Tensor, layout: 'chw' | 'hwc'): { C: number; H: number; W: number } {
  const s = x.shape.length === 4 && x.shape[0] === 1 ? x.shape.slice(1) : x.shape;
  if (s.length !== 3) throw new GpuError(`${op}: ${x} is not [${layout === 'chw' ? 'C, H, W' : 'H, W, C'}] (or with a batch of 1)`);
  return layout === 'chw' ? { C: s[0], H: s[1], W: s[2] } : { H: s[0], W: s[1], C: s[2] };
}

/** x → patches [rows·Wo, C·KH·KW], row q = (oy − row0)·Wo + ox, column in Conv2d weight order. */
export function unfold(gpu: Gpu, x: Tensor, o: UnfoldOptions): Tensor {
  requireF32('unfold', 'x', x);
  const { C, H, W } = dims('unfold', x, o.layout);
  const [KH, KW] = o.kernel;
  const [top, left, bottom, right] = o.pad ?? [0, 0, 0, 0];
  const S = o.stride;
  const ints = [KH, KW, S, top, left, bottom, right];
  if (!ints.every((v) => Number.isInteger(v) && v >= 0) || KH < 1 || KW < 1 || S < 1) throw new GpuError(`unfold: bad kernel ${KH}×${KW}, stride ${S} or padding ${[top, left, bottom, right]}`);
  if (KH > H + top + bottom || KW > W + left + right) throw new GpuError(`unfold: a ${KH}×${KW} kernel does not fit ${x} padded by ${[top, left, bottom, right]}`);
  const Ho = convOut(H, KH, S, top, bottom);
  const Wo = convOut(W, KW, S, left, right);
  const row0 = o.row0 ?? 0;
  const rows = o.rows ?? Ho - row0;
  if (row0 < 0 || rows < 0 || row0 + rows > Ho) throw new GpuError(`unfold: rows ${row0}..${row0 + rows} outside the ${Ho} output rows`);
  const K = C * KH * KW;
  const n = rows * Wo * C * KH; // invocations: KW elements each
  const [sc, sy, sx] = o.layout === 'chw' ? [H * W, W, 1] : [1, W * C, C];
  const out = gpu.tensor([rows * Wo, K], 'f32', o.name ?? `${x.name}.patches`);
  gpu.dispatch({
    kernel: 'im2col',
    pipeline: { shader: 'im2col.wgsl', constants: { WG } },
    params: { values: [C, H, W, KH, KW, S, top, left, Wo, row0, sc, sy, sx, n] },
    bindings: [x, out],
    workgroups: elementGrid(gpu, n, WG),
    shapes: `C=${C} H=${H} W=${W} k=${KH}x${KW} s=${S} rows=${rows}`,
    bytes: 8 * n * KW,
  });
  return out;
}

export interface Conv2dOptions {
  bias?: Tensor;
  stride?: number;
  pad?: Padding;
  name?: string;
  /** Largest im2col buffer per chunk of output rows (tests force chunking with a small one). */
  maxPatchBytes?: number;
}

/** x [H, W, C] → [Ho, Wo, D] (see the file header). */
export function conv2d(gpu: Gpu, x: Tensor, weight: Tensor, o: Conv2dOptions = {}): Tensor {
  requireF32('conv2d', 'x', x);
  requireWeight('conv2d', 'weight', weight);
  if (weight.shape.length !== 4) throw new GpuError(`conv2d: weight ${weight} is not [D, C, KH, KW]`);
  const [D, C, KH, KW] = weight.shape;
  const { H, W, C: xc } = dims('conv2d', x, 'hwc');
  if (xc !== C) throw new GpuError(`conv2d: x ${x} has ${xc} channels, weight ${weight} expects ${C}`);
  const S = o.stride ?? 1;
  const pad = o.pad ?? [0, 0, 0, 0];
  const name = o.name ?? `conv(${x.name})`;
  const w2 = view(weight, [D, C * KH * KW]);
  if (KH === 1 && KW === 1 && S === 1 && pad.every((p) => p === 0)) {
    return view(linear(gpu, view(x, [H * W, C]), w2, { bias: o.bias, name }), [H, W, D]);
  }
  const Ho = convOut(H, KH, S, pad[0], pad[2]);
  const Wo = convOut(W, KW, S, pad[1], pad[3]);
  const limit = Math.min(o.maxPatchBytes ?? MAX_PATCH_BYTES, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const chunk = Math.max(1, Math.floor(limit / (Wo * C * KH * KW * 4)));
  const unfoldRows = (row0: number, rows: number) => unfold(gpu, x, { layout: 'hwc', kernel: [KH, KW], stride: S, pad, row0, rows });
  if (chunk >= Ho) {
    const patches = unfoldRows(0, Ho);
    const y = linear(gpu, patches, w2, { bias: o.bias, name });
    gpu.release(patches);
    return view(y, [Ho, Wo, D]);
  }
  const y = gpu.tensor([Ho, Wo, D], 'f32', name);
  for (let r = 0; r < Ho; r += chunk) {
    const rows = Math.min(chunk, Ho - r);
    const patches = unfoldRows(r, rows);
    const part = linear(gpu, patches, w2, { bias: o.bias });
    gpu.copy(part, y, 0, r * Wo * D, rows * Wo * D);
    gpu.release(patches, part);
  }
  return y;
}
