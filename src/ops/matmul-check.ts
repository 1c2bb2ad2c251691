/**
 * The first-use self-check of the matmul variants written for GPUs this project's machines
 * do not have: 'sgmat' (subgroup matrices) and 'tiled16' (f16 weight tile, `shader-f16`).
 * linear() picks neither on a device until it has reproduced an f64 reference here, at the
 * K of the real models; a variant that differs, fails to compile, or raises any GPU error
 * is dropped with a one-line warning and the device keeps 'tiled' — and stays usable.
 *
 * Errors: the candidate runs inside its own 'validation', 'internal' and 'out-of-memory'
 * error scopes, so a driver that cannot build the pipeline (an internal error) does not
 * reach `onuncapturederror`, which would poison the device for the rest of the command.
 *
 * Problems (the tiles are 32 to 128 rows × 64 or 128 columns, so M and N divide none of them;
 * on a GPU the peak table knows, 'sgmat' runs the two long ones with K split over workgroups
 * and a reduction pass — one tile on 132 SMs — and the short one unsplit, so both paths are checked):
 *   [72, 80, 100]    bias + silu + residual: every epilogue path, TILE_M 128
 *   [40, 80, 4096]   no epilogue, TILE_M 64: the attention projections of a 7B LLaMA
 *   [72, 80, 11008]  residual: its down_proj, the longest K of the supported models
 * x ~ U(−1, 1) f32, W ~ U(−0.2, 0.2) rounded to f16, b, r ~ U(−1, 1).
 *
 * The bound, per output (u = 2⁻²⁴, f32's unit roundoff; A = Σₖ |xₖ wₖ|, W₁ = Σₖ |wₖ|, in f64):
 *   accumulation  λ·√K·u·A, λ = 8 — Higham & Mary's probabilistic bound for an inner product
 *                 in any summation order (SIAM J. Sci. Comput. 41(5), 2019, Thm 3.1: holds
 *                 with probability ≥ 1 − 2K·exp(−λ²/2); at λ = 8, K = 11008 that misses one of
 *                 5760 outputs with probability < 2e-6). The worst-case γ_K = K·u would let
 *                 f16 accumulation through at K = 11008; this one is ~10× below it.
 *   inputs        2⁻²²·A + 2⁻²⁵·W₁ — sgmat multiplies hi = f16(x) and lo = f16(x − hi), so
 *                 |x − hi − lo| ≤ 2⁻²²|x| (2⁻²⁵ absolute where lo is subnormal); the other
 *                 variants multiply exact f32 x and f16 W, and this term only adds slack.
 *   epilogue      the above × 1.1 (max |silu′|) + 8u·(|z| + |r|) for the bias add, silu in
 *                 f32 and the residual add (z = x·w + b).
 * What it catches: at K = 100 the bound is ~4× below the error of f16 activations (sgmat
 * without its lo half); at K = 11008 it is ~10× below that of f16 accumulation. Wrong
 * indexing or a skipped tile misses by orders of magnitude at every K.
 *
 * The ONE_PRODUCT forms (`--precision f16`, src/ops/precision.ts) are checked apart, on the
 * same problems: the reference is computed in f64 on f16-ROUNDED x (what the kernel
 * multiplies; W is f16 already), and the bound is
 *   accumulation  λ·√K·u·A as above — f16 × f16 products are exact in f32, so no input term;
 *   outputs       the kernel rounds to f16 (unit roundoff 2⁻¹¹; 2⁻²⁵ absolute below 2⁻¹⁴)
 *                 after the bias, after the activation, the residual before the add, and the
 *                 sum: 1.1·(accumulation + 2⁻¹¹|z|) + 2⁻¹¹·(|act(z)| + |r| + |y|) + 4·2⁻²⁵,
 *                 the f32 epilogue's 8u·(|z| + |r|), all × (1 + 2⁻⁹) for second-order terms.
 * Round-to-nearest makes the output term rigorous, so the worst output sits near ½ of it.
 * What it catches: f16 accumulation misses by ~K/8 at every problem (A/|y| ~ √K, twice);
 * so do wrong indexing, a skipped tile or a lost split-K chunk.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import { fromF16, roundF16, toF16 } from '../gpu/half.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { mulberry32 } from '../util/random.ts';
import { kernelRefusal, linear, markChecked, type Activation, type LinearOptions, type MatmulKernel } from './linear.ts';
import type { Precision } from './precision.ts';

export interface CheckProblem {
  shape: [number, number, number];
  bias: boolean;
  act: Activation;
  residual: boolean;
}

export const CHECK_PROBLEMS: readonly CheckProblem[] = [
  { shape: [72, 80, 100], bias: true, act: 'silu', residual: true },
  { shape: [40, 80, 4096], bias: false, act: 'none', residual: false },
  { shape: [72, 80, 11008], bias: false, act: 'none', residual: true },
];

const U = 2 ** -24;
const LAMBDA = 8;

export interface KernelCheck {
  ok: boolean;
  /** The largest |Δ| / bound over every output of every problem that ran (≤ 1 passes). */
  worst?: number;
  /** What went wrong, for the warning (empty when ok). */
  reason: string;
}

/** Runs a candidate: the variant's linear(), or (in tests) a planted one. */
export type Candidate = (x: Tensor, w: Tensor, opts: LinearOptions) => Tensor;

/** Seeded uniform values in [−scale, scale). */
function uniform(n: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

/** f16's unit roundoff, and half its smallest subnormal (the absolute error of rounding below 2⁻¹⁴). */
const H = 2 ** -11;
const H_SUB = 2 ** -25;

/**
 * y in f64 and its per-output bound (the header's derivation). At precision 'f16', `x` must
 * already be f16-rounded (the kernel's operand) and the bound is the ONE_PRODUCT form's.
 */
export function referenceWithBound(
  x: Float32Array,
  w: ArrayLike<number>,
  p: CheckProblem,
  b?: Float32Array,
  r?: Float32Array,
  precision: Precision = 'f32',
): { y: Float64Array; bound: Float64Array } {
  const [M, N, K] = p.shape;
  const y = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  const one = precision === 'f16';
  const acc = LAMBDA * Math.sqrt(K) * U + (one ? 0 : 2 ** -22);
  const w1 = new Float64Array(N);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) w1[n] += Math.abs(w[n * K + k]);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const t = x[m * K + k] * w[n * K + k];
        s += t;
        a += Math.abs(t);
      }
      const z = s + (b ? b[n] : 0);
      const res = r ? r[m * N + n] : 0;
      const act = p.act === 'silu' ? z / (1 + Math.exp(-z)) : z;
      y[m * N + n] = act + res;
      const epilogue = 8 * U * (Math.abs(z) + Math.abs(res));
      bound[m * N + n] = one
        ? (1 + 2 ** -9) * (1.1 * (acc * a + H * Math.abs(z)) + H * (Math.abs(act) + Math.abs(res) + Math.abs(act + res)) + 4 * H_SUB + epilogue)
        : 1.1 * (acc * a + H_SUB * w1[n]) + epilogue;
    }
  }
  return { y, bound };
}

/**
 * Runs `kernel` (or `candidate`) on CHECK_PROBLEMS against the f64 reference. Every GPU
 * error it raises is caught in its own scopes and reported; the device stays usable.
 * `slack` scales the bound (tests only).
 */
export async function checkKernel(
  gpu: Gpu,
  kernel: MatmulKernel,
  opts: { problems?: readonly CheckProblem[]; candidate?: Candidate; slack?: number; precision?: Precision } = {},
): Promise<KernelCheck> {
  const precision = opts.precision ?? 'f32';
  const candidate = opts.candidate ?? ((x, w, o) => linear(gpu, x, w, { ...o, kernel }));
  const slack = opts.slack ?? 1;
  let worst = 0;
  for (const [i, p] of (opts.problems ?? CHECK_PROBLEMS).entries()) {
    const [M, N, K] = p.shape;
    const xs = uniform(M * K, 10 * i + 1);
    const ws = toF16(uniform(N * K, 10 * i + 2, 0.2));
    const bs = p.bias ? uniform(N, 10 * i + 3) : undefined;
    const rs = p.residual ? uniform(M * N, 10 * i + 4) : undefined;
    const got = await runScoped(gpu, () => {
      const x = gpu.upload(xs, [M, K], 'check.x');
      const w = gpu.upload(ws, [N, K], 'check.w', 'f16');
      const bias = bs && gpu.upload(bs, [N], 'check.b');
      const residual = rs && gpu.upload(rs, [M, N], 'check.r');
      return { inputs: [x, w, bias, residual], run: () => candidate(x, w, { bias, residual, act: p.act, name: `check.${kernel}`, precision }) };
    });
    if (typeof got === 'string') return { ok: false, reason: `it did not run at [${p.shape.join(', ')}]: ${got}` };
    const { y, bound } = referenceWithBound(precision === 'f16' ? roundF16(xs) : xs, fromF16(ws), p, bs, rs, precision);
    for (let j = 0; j < y.length; j++) {
      const e = Math.abs(got[j] - y[j]) / (bound[j] * slack);
      worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
    }
    if (!(worst <= 1)) {
      return { ok: false, worst, reason: `at [${p.shape.join(', ')}] an output differs from the f64 reference by ${worst.toPrecision(3)}× its rounding bound` };
    }
  }
  return { ok: true, worst, reason: '' };
}

/**
 * Uploads the inputs and runs the candidate inside validation, internal and out-of-memory
 * scopes; returns y read back, or the first error's message. Its tensors are released and
 * the queue drained before the scopes close, so nothing of the check is left pending.
 */
async function runScoped(gpu: Gpu, setup: () => { inputs: (Tensor | undefined)[]; run: () => Tensor }): Promise<Float32Array | string> {
  const d = gpu.device;
  gpu.flush(); // no submission's scope open below ours
  d.pushErrorScope('out-of-memory');
  d.pushErrorScope('internal');
  d.pushErrorScope('validation');
  const firstLines = (e: unknown) => {
    if (!(e instanceof GpuError)) throw e;
    return e.message.split('\n').slice(0, 3).join(' ');
  };
  const made: (Tensor | undefined)[] = [];
  let result: Float32Array | string;
  try {
    const { inputs, run } = setup();
    made.push(...inputs);
    const y = run();
    made.push(y);
    result = await gpu.readF32(y);
  } catch (e) {
    result = firstLines(e);
  }
  gpu.release(...made);
  try {
    await gpu.sync();
  } catch (e) {
    if (typeof result !== 'string') result = firstLines(e);
  }
  const [validation, internal, oom] = [await d.popErrorScope(), await d.popErrorScope(), await d.popErrorScope()];
  const e = validation ?? internal ?? oom;
  if (e) return `${validation ? 'validation' : internal ? 'internal' : 'out-of-memory'} error: ${e.message.split('\n')[0]}`;
  return result;
}

/** The variants that are only picked after passing the check here, in the order they are checked. */
const CHECKED: readonly { kernel: MatmulKernel; what: (gpu: Gpu) => string }[] = [
  { kernel: 'tiled16', what: () => `shader-f16` },
  { kernel: 'sgmat', what: (gpu) => `subgroup matrices f16 ${gpu.subgroupMatrix!.M}×${gpu.subgroupMatrix!.N}×${gpu.subgroupMatrix!.K} → f32` },
];

/**
 * Checks every GPU-class matmul variant this device could run, in its form at `precision`
 * (the ONE_PRODUCT form at 'f16'), and lets linear() pick those that pass at that precision.
 * Returns one line per variant checked, for the log (empty on CPU-class devices, where none
 * applies, and at 'f16' without `shader-f16`); a failure is also a warning through `warn`.
 */
export async function checkMatmulVariants(gpu: Gpu, warn: (line: string) => void, precision: Precision = 'f32'): Promise<string[]> {
  if (gpu.kernels !== 'gpu') return [];
  if (precision === 'f16' && !gpu.features.f16) return [];
  const form = precision === 'f16' ? ' (precision f16)' : '';
  const lines: string[] = [];
  for (const { kernel, what } of CHECKED) {
    if (kernelRefusal(gpu, kernel, 72, 'f16')) continue;
    const c = await checkKernel(gpu, kernel, { precision });
    if (c.ok) {
      markChecked(gpu, kernel, precision);
      lines.push(`${what(gpu)}: the '${kernel}' matmul${form} passed its self-check (max error ${c.worst!.toFixed(3)} of its bound); using it for prefill`);
    } else {
      warn(`phaselens: warning: ${what(gpu)} present, but the '${kernel}' matmul${form} failed its self-check: ${c.reason}. Not using it.`);
      lines.push(`${what(gpu)}: '${kernel}'${form} failed its self-check; not used`);
    }
  }
  return lines;
}
