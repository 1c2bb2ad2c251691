/**
 * topk.wgsl + mergeTopk against the f64 reference (test/reference/topk.ts): ids exactly
 * (ties → the smaller id), probabilities within RTOL of each reference probability.
 *
 * RTOL = 1e-5 (≈ 168 ulp of f32). A probability is exp(v − max) / Σ, with v an exact f32
 * input and the exp and the division in f64 on the host (mergeTopk); only the denominator
 * comes from the GPU in f32. Each invocation sums ⌈V/WG⌉ terms, then one invocation adds
 * the WG ≤ 64 partials, rescaled by exp(max_i − max): a sum of positive terms along a path
 * of at most ⌈3001/64⌉ + 64 = 111 roundings, ≤ 111 · 2^-24 = 6.6e-6 relative, plus the f32
 * exp of the largest terms (arguments near 0, a few ulp). Measured: ≤ 1e-7. Relative, because
 * the probabilities checked span 7e-4 … 1: an absolute 1e-5 forgave a 0.2 % error at p ≈ 5e-3.
 */
import { describe, expect, it } from 'vitest';
import { mergeTopk, topk } from '../../src/ops/topk.ts';
import { topkRef } from '../reference/topk.ts';
import { getGpu, randn } from '../helpers/gpu.ts';

const RTOL = 1e-5;

function expectProbs(got: number[][], want: number[][]): void {
  want.forEach((row, r) => {
    expect(got[r]).toHaveLength(row.length);
    row.forEach((p, i) => expect(Math.abs(got[r][i] - p) / p, `row ${r} rank ${i}: ${got[r][i]} vs ${p}`).toBeLessThanOrEqual(RTOL));
  });
}

async function run(x: Float32Array, rows: number, V: number, k: number, split: number[] = []) {
  const gpu = await getGpu();
  const bounds = [0, ...split, V];
  const parts = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [a, b] = [bounds[i], bounds[i + 1]];
    const block = new Float32Array(rows * (b - a));
    for (let r = 0; r < rows; r++) block.set(x.subarray(r * V + a, r * V + b), r * (b - a));
    const res = topk(gpu, gpu.upload(block, [rows, b - a], `x${i}`), Math.min(k, b - a), a);
    parts.push({
      values: (await gpu.read(res.values)) as Float32Array,
      ids: (await gpu.read(res.ids)) as Uint32Array,
      stats: (await gpu.read(res.stats)) as Float32Array,
      k: Math.min(k, b - a),
    });
  }
  // pad parts smaller than k so mergeTopk sees k entries each
  const padded = parts.map((p) => {
    if (p.k === k) return p;
    const values = new Float32Array(rows * k).fill(-Infinity);
    const ids = new Uint32Array(rows * k);
    for (let r = 0; r < rows; r++) for (let i = 0; i < p.k; i++) {
      values[r * k + i] = p.values[r * p.k + i];
      ids[r * k + i] = p.ids[r * p.k + i];
    }
    return { values, ids, stats: p.stats };
  });
  return mergeTopk(padded, rows, k);
}

describe('topk.wgsl', () => {
  const cases: [number, number, number][] = [
    [1, 1, 1],
    [3, 100, 5],
    [7, 1000, 1],
    [5, 3001, 10],
    [2, 130, 32],
  ];
  for (const [rows, V, k] of cases) {
    it(`rows=${rows} V=${V} k=${k}`, async () => {
      const x = randn(rows * V, rows * 31 + V, 8);
      const got = await run(x, rows, V, k);
      const want = topkRef(x, rows, V, k);
      expect(got.ids).toEqual(want.ids);
      expectProbs(got.probs, want.probs);
    });
  }

  it('ties keep the smaller id; merged split vocabulary equals the whole', async () => {
    const rows = 4;
    const V = 777;
    const x = randn(rows * V, 5, 3);
    for (let r = 0; r < rows; r++) { x[r * V + 10] = 9; x[r * V + 500] = 9; x[r * V + 700] = 9; }
    const want = topkRef(x, rows, V, 6);
    const whole = await run(x, rows, V, 6);
    const split = await run(x, rows, V, 6, [256, 600]);
    expect(whole.ids).toEqual(want.ids);
    expect(split.ids).toEqual(want.ids);
    for (let r = 0; r < rows; r++) expect(want.ids[r].slice(0, 3)).toEqual([10, 500, 700]);
    expectProbs(whole.probs, want.probs);
    expectProbs(split.probs, want.probs);
  });
});
