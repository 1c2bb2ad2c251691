/**
 * Small helpers shared by the op wrappers in src/ops (shape checks, launch sizes). The
 * GPU-side shared code lives in shaders/lib.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import { Tensor } from '../gpu/tensor.ts';

/** Bytes per element of a weight dtype as the profiler counts them. */
export function elemBytes(t: Tensor): number {
  return t.dtype === 'f16' ? 2 : 4;
}

export function requireF32(op: string, what: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new GpuError(`${op}: ${what} must be f32, got ${t}`);
}

/** Weights may be f32 or packed f16. */
export function requireWeight(op: string, what: string, t: Tensor): void {
  if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new GpuError(`${op}: ${what} must be f32 or f16, got ${t}`);
}

/** [rows, D] view of x over its last dimension (rows = product of the others). */
export function rowsOf(op: string, x: Tensor): { rows: number; D: number } {
  if (x.shape.length === 0) throw new GpuError(`${op}: ${x} has no last dimension`);
  const D = x.shape[x.shape.length - 1];
  return { rows: D === 0 ? 0 : x.numel / D, D };
}

/** CPU-class kernels (lavapipe, SwiftShader, or forced; src/gpu/adapter-class.ts): workgroup barriers are expensive there. */
export function isCpuAdapter(gpu: Gpu): boolean {
  return gpu.kernels === 'cpu';
}

/**
 * Workgroup size for a one-workgroup-per-row kernel (layernorm, rmsnorm): a power of two.
 * GPUs: ~4 elements per invocation, 32..256. CPU adapters: 32 — each barrier of the
 * reduction tree costs a switch over every invocation, and measured on lavapipe
 * (577×1024 layernorm, 600×4096 rmsnorm) 32 was 2–4× faster than 256.
 */
export function rowWorkgroup(gpu: Gpu, D: number, override?: number): number {
  if (override !== undefined) {
    if (!(Number.isInteger(override) && override > 0 && (override & (override - 1)) === 0 && override <= gpu.limits.maxComputeInvocationsPerWorkgroup)) {
      throw new GpuError(`workgroup size ${override} must be a power of two ≤ ${gpu.limits.maxComputeInvocationsPerWorkgroup}`);
    }
    return override;
  }
  if (isCpuAdapter(gpu)) return 32;
  let wg = 32;
  while (wg < 256 && wg * 4 < D) wg *= 2;
  return wg;
}

/** Workgroups for one invocation per element: n elements, `wg` per workgroup, split over x/y. */
export function elementGrid(gpu: Gpu, n: number, wg: number): [number, number] {
  return gpu.grid(Math.ceil(n / wg));
}

/** The same buffer seen with another shape (no copy); element counts must agree. */
export function view(t: Tensor, shape: readonly number[], name = t.name): Tensor {
  const v = new Tensor(t.buffer, shape, t.dtype, name);
  if (v.numel !== t.numel) throw new GpuError(`view of ${t} as [${shape.join(', ')}]: element counts differ`);
  return v;
}
