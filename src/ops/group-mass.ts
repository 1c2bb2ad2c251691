/**
 * Attention mass of one query row on groups of keys, averaged over heads (the narrow-gate
 * study's attention share, before normalisation): from α [H, Skv], the softmax weights of
 * the row (`attentionRow` in ./attention.ts), and a group index per key,
 *
 *   out[row, g] = 1/H · Σ_h Σ_{j ∈ group g} α^h_j
 *
 * written into row `row` of out [R, G] f32. Keys whose index is ≥ G are in no group.
 * Kernel: shaders/group_mass.wgsl (one workgroup per group).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { isCpuAdapter, requireF32 } from './common.ts';

/** The group of each of `Skv` keys, on the GPU (u32; `groups` lists each group's key positions, disjoint). */
export function keyGroups(gpu: Gpu, Skv: number, groups: readonly (readonly number[])[], name = 'key_groups'): Tensor {
  const idx = new Uint32Array(Math.max(1, Skv)).fill(groups.length);
  groups.forEach((keys, g) => {
    for (const j of keys) {
      if (!(Number.isInteger(j) && j >= 0 && j < Skv)) throw new GpuError(`keyGroups: key ${j} of group ${g} is outside 0..${Skv - 1}`);
      if (idx[j] !== groups.length) throw new GpuError(`keyGroups: key ${j} is in groups ${idx[j]} and ${g}`);
      idx[j] = g;
    }
  });
  return gpu.upload(idx, [idx.length], name, 'u32');
}

export function groupMass(gpu: Gpu, alpha: Tensor, group: Tensor, out: Tensor, row = 0): void {
  requireF32('groupMass', 'alpha', alpha);
  requireF32('groupMass', 'out', out);
  if (alpha.shape.length !== 2) throw new GpuError(`groupMass: alpha ${alpha} must be [H, Skv]`);
  const [H, Skv] = alpha.shape;
  if (group.dtype !== 'u32' || group.numel < Skv) throw new GpuError(`groupMass: group ${group} must be u32 with ${Skv} entries`);
  if (out.shape.length !== 2) throw new GpuError(`groupMass: out ${out} must be [rows, groups]`);
  const [R, G] = out.shape;
  if (!(Number.isInteger(row) && row >= 0 && row < R)) throw new GpuError(`groupMass: row ${row} is outside 0..${R - 1} of ${out}`);
  if (G === 0 || Skv === 0) return;
  gpu.dispatch({
    kernel: 'group_mass',
    pipeline: { shader: 'group_mass.wgsl', constants: { WG: isCpuAdapter(gpu) ? 32 : 128 } },
    params: { values: [Skv, H, G, row * G] },
    bindings: [alpha, group, out],
    workgroups: [G],
    shapes: `H=${H} Skv=${Skv} G=${G}`,
    flops: G * H * Skv,
    bytes: 4 * (G * (H * Skv + Skv) + G),
  });
}
