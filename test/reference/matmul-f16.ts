/**
 * CPU reference for shaders/matmul.wgsl at precision f16 (ONE_PRODUCT): HF's fp16 Linear.
 * x and W are rounded to f16, the products summed exactly (f64), and the result rounded to
 * f16 after the bias, after the activation and after the residual add (the residual
 * rounded first). The kernel sums in f32 in its own order, so it may land on the other
 * side of a rounding boundary: instead of one value the reference gives, per output, every
 * f16 value the kernel may return —
 *   after the sum    f16 values of [z − e, z + e], e = λ√K·u·A + u·|z| (Higham & Mary's
 *                    probabilistic bound for an f32 inner product in any order, λ = 8, as
 *                    src/ops/matmul-check.ts; A = Σ|xₖwₖ|; u·|z| for the bias add)
 *   after act, add   each candidate v mapped exactly, widened by the f32 evaluation's error
 *                    (2⁻²⁰·(|v| + |act(v)|), far above the shaders' ~1e-7, far below an f16
 *                    step) and rounded to f16 again.
 * Mostly one value: the sets widen only where an exact result lies near a rounding boundary.
 */
import { f16BitsToF32, f32ToF16Bits, roundF16 } from '../../src/gpu/half.ts';
import { activation, type ActName } from './activations.ts';

const U = 2 ** -24;
const LAMBDA = 8;

const r16 = (v: number) => f16BitsToF32(f32ToF16Bits(v));

/** The f16 value after v (v an f16 value). */
function nextUp16(v: number): number {
  if (v === 0) return 2 ** -24;
  const b = f32ToF16Bits(v);
  return f16BitsToF32(v > 0 ? b + 1 : b - 1);
}

/** Every f16 value that rounding a point of [a, b] gives (rounding is monotone). */
function f16Values(a: number, b: number): number[] {
  const out: number[] = [];
  const hi = r16(b);
  for (let v = r16(a); v <= hi; v = nextUp16(v)) out.push(v === 0 ? 0 : v);
  return out;
}

/** The f16 values `f(v) ± err(v)` rounds to, over the candidates. */
function step(vs: number[], f: (v: number) => number, err: (v: number, fv: number) => number): number[] {
  const out = new Set<number>();
  for (const v of vs) {
    const fv = f(v);
    const e = err(v, fv);
    for (const c of f16Values(fv - e, fv + e)) out.add(c);
  }
  return [...out];
}

export interface F16Options {
  bias?: ArrayLike<number>;
  act?: ActName;
  residual?: ArrayLike<number>;
  /** false: x is not rounded (what a kernel that forgot to would compute); for testing the test. */
  roundX?: boolean;
}

/** Per output, the f16 values the ONE_PRODUCT kernel may return (header). */
export function linearF16Candidates(x: Float32Array, w: ArrayLike<number>, M: number, N: number, K: number, o: F16Options = {}): number[][] {
  const xr = o.roundX === false ? x : roundF16(x);
  const wr = roundF16(w);
  const act = activation(o.act ?? 'none');
  const actErr = (v: number, fv: number) => 2 ** -20 * (Math.abs(v) + Math.abs(fv));
  const out: number[][] = [];
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const t = xr[m * K + k] * wr[n * K + k];
        s += t;
        a += Math.abs(t);
      }
      const z = s + (o.bias ? o.bias[n] : 0);
      const e = LAMBDA * Math.sqrt(K) * U * a + U * Math.abs(z);
      let vs = f16Values(z - e, z + e);
      if ((o.act ?? 'none') !== 'none') vs = step(vs, act, actErr);
      if (o.residual) {
        const r = r16(o.residual[m * N + n]);
        vs = step(vs, (v) => v + r, (_, fv) => U * Math.abs(fv));
      }
      out.push(vs);
    }
  }
  return out;
}

/** How many outputs are not one of their candidates. */
export function outsideCandidates(got: ArrayLike<number>, candidates: number[][]): number {
  let bad = 0;
  candidates.forEach((c, i) => {
    if (!c.includes(got[i])) bad++;
  });
  return bad;
}
