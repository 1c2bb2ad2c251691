/** Seeded test data and the error measure every kernel test and benchmark uses (no GPU, no vitest). */
import { mulberry32 } from '../../src/util/random.ts';

/** Seeded uniform floats in [0, 1). */
export const rng = mulberry32;

/** Uniform values in [-scale, scale). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/**
 * max |got − want| / max |want|: the error relative to the tensor's scale. Per-element
 * relative error is meaningless where the reference is ~0, so we use the tensor's
 * largest magnitude as the scale (as the parity tests of the issue tracker specify).
 */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} ≠ ${want.length}`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= d)) d = Number.isNaN(e) ? Infinity : e;
    m = Math.max(m, Math.abs(want[i]));
  }
  return m === 0 ? d : d / m;
}
