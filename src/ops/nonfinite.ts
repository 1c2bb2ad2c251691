/**
 * Non-finite check — counts[slot] += the number of NaN / ±Inf elements of x
 * (shaders/nonfinite.wgsl). One pass over x, no readback: the caller reads the small
 * `counts` [slots] u32 once at the end of a forward.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elementGrid, requireF32 } from './common.ts';

const WG = 256;

export function nonFiniteCounts(gpu: Gpu, slots: number, name = 'nonfinite.counts'): Tensor {
  return gpu.upload(new Uint32Array(slots), [slots], name, 'u32');
}

export function countNonFinite(gpu: Gpu, x: Tensor, counts: Tensor, slot: number): void {
  requireF32('countNonFinite', 'x', x);
  if (counts.dtype !== 'u32' || slot < 0 || slot >= counts.numel) throw new GpuError(`countNonFinite: slot ${slot} outside counts ${counts}`);
  const n = x.numel;
  if (n === 0) return;
  gpu.dispatch({
    kernel: 'nonfinite',
    pipeline: { shader: 'nonfinite.wgsl', constants: { WG } },
    params: { values: [n, slot] },
    bindings: [x, counts],
    workgroups: elementGrid(gpu, n, WG),
    shapes: `n=${n}`,
    flops: n,
    bytes: 4 * n,
  });
}
