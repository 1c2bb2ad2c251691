/**
 * GroupNorm — torch `nn.GroupNorm(G, C, eps, affine=True)` on channels-last activations,
 * optionally followed by SiLU (`h *= sigmoid(h)` in Chameleon's VQ encoder, fused here):
 *   x [..., C] f32 (every leading position), weight [C] and bias [C] f32|f16 → y like x, f32
 * Kernel: shaders/group_norm.wgsl (one workgroup per group; the moments of lib/moments.wgsl).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elemBytes, requireF32, requireWeight, rowsOf, rowWorkgroup } from './common.ts';

export interface GroupNormOptions {
  /** SiLU on the output. */
  silu?: boolean;
  name?: string;
  /** Override the adapter-based workgroup size (a power of two): tests. */
  workgroupSize?: number;
}

export function groupNorm(gpu: Gpu, x: Tensor, groups: number, weight: Tensor, bias: Tensor, eps: number, o: GroupNormOptions = {}): Tensor {
  requireF32('groupNorm', 'x', x);
  requireWeight('groupNorm', 'weight', weight);
  requireWeight('groupNorm', 'bias', bias);
  const { rows: N, D: C } = rowsOf('groupNorm', x);
  if (!(Number.isInteger(groups) && groups >= 1 && C % groups === 0)) throw new GpuError(`groupNorm: ${C} channels of ${x} do not split into ${groups} groups`);
  if (weight.numel !== C || bias.numel !== C) throw new GpuError(`groupNorm: weight ${weight} and bias ${bias} must have the ${C} channels of ${x}`);
  if (!(eps >= 0)) throw new GpuError(`groupNorm: eps must be ≥ 0, got ${eps}`);
  const wg = rowWorkgroup(gpu, (N * C) / groups, o.workgroupSize);
  const y = gpu.tensor(x.shape, 'f32', o.name ?? `groupnorm(${x.name})`);
  gpu.dispatch({
    kernel: `group_norm${o.silu ? '.silu' : ''}`,
    pipeline: {
      shader: 'group_norm.wgsl',
      defines: { SILU: !!o.silu, WEIGHT_F16: weight.dtype === 'f16', WEIGHT_BINDING: 2, BIAS: true, BIAS_F16: bias.dtype === 'f16', BIAS_BINDING: 3 },
      constants: { WG: wg },
    },
    params: { values: [N, C, groups, eps], types: 'uuuf' },
    bindings: [x, weight, bias, y],
    workgroups: [groups],
    shapes: `N=${N} C=${C} G=${groups}`,
    flops: 10 * N * C,
    bytes: 3 * 4 * N * C + 4 * N * C + (elemBytes(weight) + elemBytes(bias)) * C,
  });
  return y;
}
