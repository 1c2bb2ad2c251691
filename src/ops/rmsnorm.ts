/**
 * y = weight · (x · rsqrt(mean(x²) + eps)) over the last dimension — HF `LlamaRMSNorm`
 * (`input_layernorm`, `post_attention_layernorm`, `model.norm`), in f32.
 *   x [..., D] f32, weight [D] f32|f16, y [..., D] f32
 * Kernel: shaders/rmsnorm.wgsl (one workgroup per row).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { NormOptions } from './layernorm.ts';
import { elemBytes, requireF32, requireWeight, rowsOf, rowWorkgroup } from './common.ts';

export function rmsNorm(gpu: Gpu, x: Tensor, weight: Tensor, eps: number, opts: NormOptions = {}): Tensor {
  requireF32('rmsNorm', 'x', x);
  requireWeight('rmsNorm', 'weight', weight);
  const { rows, D } = rowsOf('rmsNorm', x);
  if (weight.numel !== D) throw new GpuError(`rmsNorm: weight ${weight} does not have ${D} elements (last dim of ${x})`);
  if (!(eps >= 0)) throw new GpuError(`rmsNorm: eps must be ≥ 0, got ${eps}`);
  const y = gpu.tensor(x.shape, 'f32', opts.name ?? `rmsnorm(${x.name})`, { fullyWritten: true });
  gpu.dispatch({
    kernel: `rmsnorm.${weight.dtype}`,
    pipeline: {
      shader: 'rmsnorm.wgsl',
      defines: { WEIGHT_F16: weight.dtype === 'f16', WEIGHT_BINDING: 2 },
      constants: { WG: rowWorkgroup(gpu, D, opts.workgroupSize) },
    },
    params: { values: [rows, D, eps], types: 'uuf' },
    bindings: [x, weight, y],
    workgroups: gpu.grid(rows),
    shapes: `rows=${rows} D=${D}`,
    flops: 4 * rows * D,
    bytes: 2 * 4 * rows * D + 4 * rows * D + elemBytes(weight) * D,
  });
  return y;
}
