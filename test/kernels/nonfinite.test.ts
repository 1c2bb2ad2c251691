import { describe, expect, it } from 'vitest';
import { countNonFinite, nonFiniteCounts } from '../../src/ops/nonfinite.ts';
import { nonFiniteRef } from '../reference/nonfinite.ts';
import { getGpu, randn, rng } from '../helpers/gpu.ts';

describe('nonfinite kernel vs the loop reference', () => {
  // sizes below, at and past one workgroup (256) and not multiples of it; NaN, ±Inf, the
  // largest finite f32, -0 and subnormals among normal values
  for (const n of [1, 7, 256, 257, 1000, 4099, 70_001]) {
    it(`n = ${n}, several slots`, async () => {
      const gpu = await getGpu();
      const r = rng(n);
      const x = randn(n, n, 1e3);
      const specials = [NaN, Infinity, -Infinity, 3.4028234663852886e38, -0, 1e-45, -1e-40];
      const planted = Math.min(n, 1 + Math.floor(n / 97));
      for (let i = 0; i < planted; i++) x[Math.floor(r() * n)] = specials[i % specials.length];
      const counts = nonFiniteCounts(gpu, 3);
      const t = gpu.upload(x, [n], 'x');
      countNonFinite(gpu, t, counts, 1);
      countNonFinite(gpu, t, counts, 1); // counters accumulate
      const got = Array.from((await gpu.read(counts)) as Uint32Array);
      expect(got).toEqual([0, 2 * nonFiniteRef(x), 0]);
      gpu.release(t, counts);
    });
  }
});
