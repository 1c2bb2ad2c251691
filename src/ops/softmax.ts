/**
 * y = softmax(scale · x) over the last dimension — torch `F.softmax(x * scale, dim=-1)`, in
 * f32. Used where attention scores are materialised (the VQ encoder's wide single head,
 * models/chameleon-vq.ts), which the fused attention kernels cannot take.
 *   x [..., D] f32, y [..., D] f32
 * Kernel: shaders/softmax.wgsl (one workgroup per row).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { requireF32, rowsOf, rowWorkgroup } from './common.ts';

export interface SoftmaxOptions {
  /** Multiplies x before the softmax (default 1). */
  scale?: number;
  name?: string;
  /** Workgroup size (default: `rowWorkgroup`); for tests. */
  workgroupSize?: number;
}

export function softmax(gpu: Gpu, x: Tensor, opts: SoftmaxOptions = {}): Tensor {
  requireF32('softmax', 'x', x);
  const { rows, D } = rowsOf('softmax', x);
  const scale = opts.scale ?? 1;
  if (!Number.isFinite(scale)) throw new GpuError(`softmax: scale must be finite, got ${scale}`);
  const y = gpu.tensor(x.shape, 'f32', opts.name ?? `softmax(${x.name})`, { fullyWritten: true });
  if (rows === 0) return y;
  gpu.dispatch({
    kernel: 'softmax',
    pipeline: { shader: 'softmax.wgsl', constants: { WG: rowWorkgroup(gpu, D, opts.workgroupSize) } },
    params: { values: [rows, D, scale], types: 'uuf' },
    bindings: [x, y],
    workgroups: gpu.grid(rows),
    shapes: `rows=${rows} D=${D}`,
    flops: 5 * rows * D,
    bytes: 3 * 4 * rows * D,
  });
  return y;
}
