/**
 * GroupNorm — torch `nn.GroupNorm(G, C, eps, affine=True)` on channels-last activations,
 * optionally followed by SiLU (`h *= sigmoid(h)` in Chameleon's VQ encoder, fused here):
 *   x [..., C] f32 (every leading position), weight [C] and bias [C] f32|f16 → y like x, f32
 * Kernel: shaders/group_norm.wgsl, two dispatches over [parts, G] workgroups: each chunk's
 * moments, then each chunk normalised by its group's combined moments (lib/moments.wgsl).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elemBytes, requireF32, requireWeight, rowsOf, rowWorkgroup } from './common.ts';

/** Elements per invocation a chunk holds at least (fewer, larger chunks when a group is short). */
const MIN_ITEMS = 8;
/** Chunks per group at most: every apply workgroup reads all of its group's. */
const MAX_PARTS = 256;

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
  const count = (N * C) / groups;
  const wg = rowWorkgroup(gpu, count, o.workgroupSize);
  const chunk = Math.max(wg * MIN_ITEMS, Math.ceil(count / MAX_PARTS));
  const parts = Math.ceil(count / chunk);
  if (groups > gpu.limits.maxComputeWorkgroupsPerDimension) throw new GpuError(`groupNorm: ${groups} groups are more than the ${gpu.limits.maxComputeWorkgroupsPerDimension} workgroups a dimension allows`);
  const partial = gpu.tensor([groups, parts, 3], 'f32', 'groupnorm.partial');
  const params = { values: [N, C, groups, eps, chunk, parts], types: 'uuufuu' };
  const shapes = `N=${N} C=${C} G=${groups} parts=${parts}`;
  gpu.dispatch({
    kernel: 'group_norm.stats',
    pipeline: { shader: 'group_norm.wgsl', defines: { STATS: true }, constants: { WG: wg } },
    params,
    bindings: [x, partial],
    workgroups: [parts, groups],
    shapes,
    flops: 4 * N * C,
    bytes: 2 * 4 * N * C,
  });
  const y = gpu.tensor(x.shape, 'f32', o.name ?? `groupnorm(${x.name})`);
  gpu.dispatch({
    kernel: `group_norm${o.silu ? '.silu' : ''}`,
    pipeline: {
      shader: 'group_norm.wgsl',
      defines: { PARTS: true, SILU: !!o.silu, WEIGHT_F16: weight.dtype === 'f16', WEIGHT_BINDING: 3, BIAS: true, BIAS_F16: bias.dtype === 'f16', BIAS_BINDING: 4 },
      constants: { WG: wg },
    },
    params,
    bindings: [x, partial, weight, bias, y],
    workgroups: [parts, groups],
    shapes,
    flops: 6 * N * C + 6 * groups * parts * parts,
    bytes: 2 * 4 * N * C + 4 * 3 * groups * parts * parts + (elemBytes(weight) + elemBytes(bias)) * C,
  });
  gpu.release(partial);
  return y;
}
