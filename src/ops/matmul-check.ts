/**
 * The self-check of a matmul variant against another on this device, and its one use:
 * 'sgmat' (subgroup matrices) is written for adapters this project's machines do not have,
 * so before any op picks it, it must reproduce 'tiled' on a random problem here. If it
 * differs, or fails to compile, the device keeps 'tiled' and the user is told why.
 *
 * The problem has sizes that divide none of the tiles (72 × 80 × 100: partial 64 × 64
 * blocks, a k step that runs past K), f16 weights, bias, an activation and a residual, so
 * every path of the kernel's loads and epilogue runs. The bound is the variants' shared
 * contract (test/kernels/matmul.test.ts): max |Δ| / max |reference| ≤ 1e-5.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import { toF16 } from '../gpu/half.ts';
import { mulberry32 } from '../util/random.ts';
import { linear, markSgmatChecked, type MatmulKernel } from './linear.ts';

export const CHECK_TOLERANCE = 1e-5;

export interface KernelComparison {
  ok: boolean;
  /** max |Δ| / max |reference|, when both ran. */
  relErr?: number;
  /** What went wrong, for the warning (empty when ok). */
  reason: string;
}

/** Seeded uniform values in [−scale, scale). */
function uniform(n: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

/** Runs `kernel` and `reference` on the same random f16-weight problem and compares them. */
export async function compareKernels(
  gpu: Gpu,
  kernel: MatmulKernel,
  reference: MatmulKernel,
  opts: { shape?: [number, number, number]; tolerance?: number } = {},
): Promise<KernelComparison> {
  const [M, N, K] = opts.shape ?? [72, 80, 100];
  const tolerance = opts.tolerance ?? CHECK_TOLERANCE;
  const x = gpu.upload(uniform(M * K, 1), [M, K], 'check.x');
  const w = gpu.upload(toF16(uniform(N * K, 2, 0.2)), [N, K], 'check.w', 'f16');
  const bias = gpu.upload(uniform(N, 3), [N], 'check.b');
  const residual = gpu.upload(uniform(M * N, 4), [M, N], 'check.r');
  const run = async (k: MatmulKernel) => {
    const y = linear(gpu, x, w, { kernel: k, bias, residual, act: 'silu', name: `check.${k}` });
    try {
      return await gpu.readF32(y);
    } finally {
      gpu.release(y);
    }
  };
  try {
    const want = await run(reference);
    let got: Float32Array;
    try {
      got = await run(kernel);
    } catch (e) {
      if (e instanceof GpuError) return { ok: false, reason: `it did not run: ${e.message.split('\n').slice(0, 3).join(' ')}` };
      throw e;
    }
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
      scale = Math.max(scale, Math.abs(want[i]));
    }
    const relErr = diff / (scale || 1);
    return relErr <= tolerance
      ? { ok: true, relErr, reason: '' }
      : { ok: false, relErr, reason: `its result differs from '${reference}' by ${relErr.toExponential(2)} (max |Δ| / max |y|; the bound is ${tolerance})` };
  } finally {
    gpu.release(x, w, bias, residual);
  }
}

/**
 * Lets linear() pick 'sgmat' on this device if it matches 'tiled'. Returns a line for the
 * log, or null when the device has no subgroup matrices; a failed check is a warning
 * through `warn` and the device keeps 'tiled'.
 */
export async function checkSubgroupMatrix(gpu: Gpu, warn: (line: string) => void): Promise<string | null> {
  const sgm = gpu.subgroupMatrix;
  if (!sgm) return null;
  const c = await compareKernels(gpu, 'sgmat', 'tiled');
  const what = `subgroup matrices f16 ${sgm.size}×${sgm.size}×${sgm.size} → f32`;
  if (c.ok) {
    markSgmatChecked(gpu);
    return `${what}: the 'sgmat' matmul matches 'tiled' (${c.relErr!.toExponential(1)}); using it for prefill`;
  }
  warn(`phaselens: warning: ${what} are present, but the 'sgmat' matmul failed its self-check: ${c.reason}. Using the 'tiled' kernel instead.`);
  return `${what}: 'sgmat' failed its self-check; using 'tiled'`;
}
