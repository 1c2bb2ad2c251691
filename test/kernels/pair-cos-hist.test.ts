/**
 * The |cos| histogram kernel (shaders/pair_cos_hist.wgsl) on the real device against the
 * f64 pair-by-pair reference, over shapes that do and do not divide its 16 × 16 pair tiles
 * and 16-column slices, zero rows, a histogram row other than 0, and accumulation.
 *
 * Tolerances. Counts: the kernel's |cos| is f32 (a d-term f32 dot product times two f32
 * inverse norms, relative error ≲ 1e-5 for these d), so a value within 1e-5 of a bin
 * boundary may land in the neighbouring bin; every other value must land in its bin. So
 * Σ_b |got_b − want_b| ≤ 2 · (values that near an edge), and the totals are equal.
 * Quantiles: the p-quantile read off the histogram lies in the bin of the k-th smallest
 * value, k = ⌈p·N⌉ (the sample quantile without interpolation between order statistics,
 * which over sparse values may sit many bins away): within one bin of it, one more for
 * the edge values that moved: |Δ| ≤ 2 / bins.
 */
import { describe, expect, it } from 'vitest';
import { contextSets } from '../../src/ops/contextualization.ts';
import { histQuantiles, pairCosHist, pairCosHistResult } from '../../src/ops/pair-cos-hist.ts';
import { pairCosRef } from '../reference/pair-cos-hist.ts';
import { getGpu, randn } from '../helpers/gpu.ts';

/** Rows with a shared direction (so the cosines spread over [0, 1], not just near 0) and different norms. */
function states(seq: number, d: number, seed: number, zero: number[] = []): Float32Array {
  const shared = randn(d, seed);
  const noise = randn(seq * d, seed + 1);
  const h = new Float32Array(seq * d);
  for (let i = 0; i < seq; i++) {
    const a = ((i * 37) % 11) / 5 - 1; // the shared part's weight varies by row, both signs
    for (let c = 0; c < d; c++) h[i * d + c] = (0.5 + (i % 5)) * (a * shared[c] + 0.6 * noise[i * d + c]);
  }
  for (const i of zero) h.fill(0, i * d, (i + 1) * d);
  return h;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

const CASES = [
  { name: 'tile-aligned 32 × 16, d 64', seq: 48, d: 64, image: range(0, 32), text: range(32, 48), bins: 4096 },
  { name: 'ragged 37 × 13, d 50, 1000 bins', seq: 52, d: 50, image: range(2, 39), text: [0, 1, ...range(39, 50)], bins: 1000 },
  { name: 'one image row × 5 text rows, d 3', seq: 6, d: 3, image: [5], text: range(0, 5), bins: 64 },
  { name: 'zero rows, scattered indices, 70 × 21, d 129', seq: 100, d: 129, image: range(10, 80), text: [...range(0, 10), ...range(85, 96)], bins: 4096, zero: [12, 3] },
];

describe('pair_cos_hist kernel vs the f64 reference', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await getGpu();
      const host = states(c.seq, c.d, c.d + c.seq, c.zero);
      const h = gpu.upload(host, [c.seq, c.d], 'h');
      const sets = contextSets(gpu, c.image, c.text);
      const hist = pairCosHistResult(gpu, 3, c.bins);
      pairCosHist(gpu, h, sets, hist, 1);
      const got = (await gpu.read(hist)) as Uint32Array;
      gpu.release(h, sets.idx, hist);
      const ref = pairCosRef(host, c.d, c.image, c.text, c.bins);
      const row = Array.from(got.subarray(c.bins, 2 * c.bins));
      expect(got.subarray(0, c.bins).every((v) => v === 0) && got.subarray(2 * c.bins).every((v) => v === 0), 'other rows untouched').toBe(true);
      expect(row.reduce((a, b) => a + b, 0)).toBe(ref.values.length);
      const l1 = row.reduce((a, v, b) => a + Math.abs(v - ref.hist[b]), 0);
      expect(l1, `${l1} counts moved; ${ref.nearEdge} values near an edge`).toBeLessThanOrEqual(2 * ref.nearEdge);
      const q = histQuantiles(row);
      for (const [p, v] of [[0.25, q.q1], [0.5, q.median], [0.75, q.q3]] as const) {
        const kth = ref.values[Math.ceil(p * ref.values.length) - 1];
        expect(Math.abs(v - kth), `quantile ${p}: ${v} vs order statistic ${kth}`).toBeLessThanOrEqual(2 / c.bins);
      }
      // the data really spread over many bins, so a kernel that bins wrongly cannot pass by luck
      expect(ref.hist.filter((v) => v > 0).length).toBeGreaterThanOrEqual(Math.min(5, ref.values.length));
    });
  }

  it('accumulates into the same row (two calls = twice the counts)', async () => {
    const gpu = await getGpu();
    const host = states(20, 17, 5);
    const h = gpu.upload(host, [20, 17], 'h');
    const sets = contextSets(gpu, range(0, 9), range(9, 20));
    const hist = pairCosHistResult(gpu, 1, 128);
    pairCosHist(gpu, h, sets, hist);
    pairCosHist(gpu, h, sets, hist);
    const got = Array.from((await gpu.read(hist)) as Uint32Array);
    gpu.release(h, sets.idx, hist);
    const ref = pairCosRef(host, 17, range(0, 9), range(9, 20), 128);
    expect(got.reduce((a, b) => a + b, 0)).toBe(2 * 99);
    expect(got.reduce((a, v, b) => a + Math.abs(v - 2 * ref.hist[b]), 0)).toBeLessThanOrEqual(4 * ref.nearEdge);
  });
});
