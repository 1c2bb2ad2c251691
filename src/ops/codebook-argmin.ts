/**
 * Nearest codeword of a vector quantiser (L2), as HF ChameleonVQVAEVectorQuantizer's
 * `torch.argmin(distances, dim=1)` (ties: the smaller index):
 *   z [..., D] f32, codebook [K, D] f32|f16 → indices [rows] u32
 * With `map` ([K] u32 or i32), each index k comes out as map[k] (Chameleon: code → BPE id).
 * Kernel: shaders/codebook_argmin.wgsl (one workgroup per row of z).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elemBytes, isCpuAdapter, requireF32, requireWeight, rowsOf } from './common.ts';

export function codebookArgmin(gpu: Gpu, z: Tensor, codebook: Tensor, opts: { map?: Tensor; name?: string; workgroupSize?: number } = {}): Tensor {
  requireF32('codebookArgmin', 'z', z);
  requireWeight('codebookArgmin', 'codebook', codebook);
  const { rows: N, D } = rowsOf('codebookArgmin', z);
  if (codebook.shape.length !== 2 || codebook.shape[1] !== D) throw new GpuError(`codebookArgmin: codebook ${codebook} is not [K, ${D}] for z ${z}`);
  const K = codebook.shape[0];
  if (K === 0) throw new GpuError('codebookArgmin: the codebook is empty');
  const map = opts.map;
  if (map && ((map.dtype !== 'u32' && map.dtype !== 'i32') || map.numel !== K)) throw new GpuError(`codebookArgmin: map ${map} is not [${K}] u32/i32`);
  // CPU adapters: few invocations (each barrier of the tree costs a pass over all of them)
  const wg = opts.workgroupSize ?? (isCpuAdapter(gpu) ? 32 : 128);
  if (!(wg > 0 && (wg & (wg - 1)) === 0 && wg <= gpu.limits.maxComputeInvocationsPerWorkgroup)) throw new GpuError(`codebookArgmin: workgroup size ${wg} must be a power of two`);
  const idx = gpu.tensor([N], map?.dtype ?? 'u32', opts.name ?? `argmin(${z.name})`);
  gpu.dispatch({
    kernel: `codebook_argmin.${codebook.dtype}`,
    pipeline: { shader: 'codebook_argmin.wgsl', defines: { W_F16: codebook.dtype === 'f16', W_BINDING: 2, MAP: !!map }, constants: { WG: wg } },
    params: { values: [N, K, D] },
    bindings: [z, codebook, idx, map ?? null],
    workgroups: gpu.grid(N),
    shapes: `N=${N} K=${K} D=${D}`,
    flops: 3 * N * K * D,
    bytes: 4 * N * D + N * K * D * elemBytes(codebook) + 4 * N,
  });
  return idx;
}
