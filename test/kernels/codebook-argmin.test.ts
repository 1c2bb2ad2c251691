import { describe, expect, it } from 'vitest';
import { codebookArgmin } from '../../src/ops/codebook-argmin.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { argminRef } from '../reference/conv.ts';
import { getGpu, randn } from '../helpers/gpu.ts';

// Codebook sizes below, at and above the workgroup sizes (32 on CPU adapters, 128 on
// GPUs, 64 forced), dimensions not multiples of 4, f32 and f16 codebooks. The indices must
// equal the f64 reference's exactly; the data are drawn so that every row's runner-up is
// far (gap checked ≥ 1e-3) above f32 rounding of the sums (~1e-6 here), so no near-tie
// decides a case.
const cases: { N: number; K: number; D: number; wdt: 'f32' | 'f16'; wg?: number }[] = [
  { N: 1, K: 1, D: 1, wdt: 'f32' },
  { N: 5, K: 7, D: 3, wdt: 'f32' },
  { N: 33, K: 100, D: 9, wdt: 'f16' },
  { N: 17, K: 257, D: 16, wdt: 'f32', wg: 64 },
  { N: 64, K: 512, D: 8, wdt: 'f16', wg: 128 },
];

describe('codebook_argmin.wgsl (codebookArgmin)', () => {
  for (const c of cases) {
    it(`N=${c.N} K=${c.K} D=${c.D} ${c.wdt} codebook workgroup=${c.wg ?? 'auto'}`, async () => {
      const gpu = await getGpu();
      const z = randn(c.N * c.D, c.N + c.K, 1);
      const e = randn(c.K * c.D, c.K + c.D, 1);
      const er = c.wdt === 'f16' ? roundF16(e) : e;
      const cb = c.wdt === 'f16' ? gpu.upload(toF16(e), [c.K, c.D], 'e', 'f16') : gpu.upload(e, [c.K, c.D], 'e');
      const got = await gpu.read(codebookArgmin(gpu, gpu.upload(z, [c.N, c.D], 'z'), cb, { workgroupSize: c.wg }));
      const want = argminRef(z, c.N, c.D, er, c.K);
      if (c.K > 1) expect(Math.min(...want.gap)).toBeGreaterThanOrEqual(1e-3);
      expect(Array.from(got)).toEqual(want.idx);
      if (c.K > 8) expect(new Set(want.idx).size).toBeGreaterThan(2); // the rows pick different codewords
    });
  }

  it('a tie keeps the smaller index (torch.argmin), wherever the invocations meet', async () => {
    const gpu = await getGpu();
    // codewords 3, 40 and 77 equal the row; every other is far
    const [K, D] = [100, 4];
    const e = new Float32Array(K * D).fill(9);
    const z = Float32Array.from([1, 2, 3, 4]);
    for (const k of [77, 40, 3]) e.set(z, k * D);
    for (const wg of [32, 64, 128]) {
      const got = await gpu.read(codebookArgmin(gpu, gpu.upload(z, [1, D], 'z'), gpu.upload(e, [K, D], 'e'), { workgroupSize: wg }));
      expect(Array.from(got)).toEqual([3]);
    }
  });

  it('with a map, each nearest index k comes out as map[k] (i32 ids)', async () => {
    const gpu = await getGpu();
    const [N, K, D] = [9, 40, 5];
    const z = randn(N * D, 21);
    const e = randn(K * D, 22);
    const map = Int32Array.from({ length: K }, (_, k) => 1000 + 7 * k);
    const got = codebookArgmin(gpu, gpu.upload(z, [N, D], 'z'), gpu.upload(e, [K, D], 'e'), { map: gpu.upload(map, [K], 'map', 'i32') });
    expect(got.dtype).toBe('i32');
    expect(Array.from(await gpu.read(got))).toEqual(argminRef(z, N, D, e, K).idx.map((k) => map[k]));
  });

  it('refuses a codebook of another width', async () => {
    const gpu = await getGpu();
    expect(() => codebookArgmin(gpu, gpu.upload(new Float32Array(6), [2, 3], 'z'), gpu.upload(new Float32Array(8), [2, 4], 'e'))).toThrow(/is not \[K, 3\]/);
  });
});
