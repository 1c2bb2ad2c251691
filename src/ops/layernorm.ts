/**
 * y = (x − mean) / sqrt(var + eps) · weight + bias over the last dimension — HF
 * `nn.LayerNorm` (biased variance), as in CLIP / EVA / Q-Former.
 *   x [..., D] f32, weight [D] f32|f16, bias [D] f32|f16 (optional), y [..., D] f32
 * Per-row parameters: weight and bias [R, D] (R dividing the rows) give row r the
 * parameters of row r mod R — Chameleon's per-head q/k norm, x [pos, heads, head_dim] with
 * weight [heads, head_dim] (HF ChameleonLayerNorm: statistics over head_dim only).
 * Kernel: shaders/layernorm.wgsl (one workgroup per row, mean then centred variance).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elemBytes, requireF32, requireWeight, rowsOf, rowWorkgroup } from './common.ts';

export interface NormOptions {
  name?: string;
  /** Override the adapter-based workgroup size (a power of two): tests and tuning. */
  workgroupSize?: number;
}

export function layerNorm(gpu: Gpu, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, eps: number, opts: NormOptions = {}): Tensor {
  requireF32('layerNorm', 'x', x);
  requireWeight('layerNorm', 'weight', weight);
  const { rows, D } = rowsOf('layerNorm', x);
  const R = D > 0 ? weight.numel / D : 1;
  if (!(Number.isInteger(R) && R >= 1 && rows % R === 0)) throw new GpuError(`layerNorm: weight ${weight} does not have ${D} elements (last dim of ${x}), or a row of them per one of R rows dividing ${rows}`);
  if (bias) {
    requireWeight('layerNorm', 'bias', bias);
    if (bias.numel !== weight.numel) throw new GpuError(`layerNorm: bias ${bias} does not have the ${weight.numel} elements of the weight`);
  }
  if (!(eps >= 0)) throw new GpuError(`layerNorm: eps must be ≥ 0, got ${eps}`);
  const y = gpu.tensor(x.shape, 'f32', opts.name ?? `layernorm(${x.name})`);
  const wg = rowWorkgroup(gpu, D, opts.workgroupSize);
  gpu.dispatch({
    kernel: `layernorm.${weight.dtype}`,
    pipeline: {
      shader: 'layernorm.wgsl',
      defines: { WEIGHT_F16: weight.dtype === 'f16', WEIGHT_BINDING: 2, BIAS: !!bias, BIAS_F16: bias?.dtype === 'f16', BIAS_BINDING: 3 },
      constants: { WG: wg },
    },
    params: { values: [rows, D, eps, R], types: 'uufu' },
    bindings: [x, weight, bias ?? null, y],
    workgroups: gpu.grid(rows),
    shapes: `rows=${rows} D=${D}${R > 1 ? ` param_rows=${R}` : ''}`,
    flops: 8 * rows * D,
    bytes: 3 * 4 * rows * D + 4 * rows * D + elemBytes(weight) * D + (bias ? elemBytes(bias) * D : 0),
  });
  return y;
}
