import { describe, expect, it } from 'vitest';
import { contextResult, contextScalars, contextSets, contextualization } from '../../src/ops/contextualization.ts';
import { contextualizationRef, type ContextRef } from '../reference/contextualization.ts';
import { getGpu, randn } from '../helpers/gpu.ts';

// Tolerance. The scalars are means of cosines, so their scale is 1 (|cos| ≤ 1) and we bound
// the absolute error: |got − want| ≤ 2e-6. In terms of the sums the kernel forms, that is
// an error of 2e-6 · m (m − 1) on ‖U‖² (whose largest possible value is m²) — i.e. the
// fp32 budget relative to the scale m² of the difference ‖U‖² − m that intra takes.
// The reference is the f64 pairwise mean (O(m² d)), independent of the unit-vector sums.
const TOL = 2e-6;

/**
 * Hidden states with real structure: a direction shared by all rows, one per set, and
 * noise, so the cosines are far from 0 and inter ≠ intra; `spike` adds LLaMA-style
 * massive activations (a few dimensions ~100× the rest) on some rows.
 */
function states(seq: number, d: number, image: readonly number[], seed: number, spike = false): Float32Array {
  const shared = randn(d, seed + 1);
  const own = [randn(d, seed + 2), randn(d, seed + 3)];
  const noise = randn(seq * d, seed + 4);
  const isImg = new Set(image);
  const h = new Float32Array(seq * d);
  for (let i = 0; i < seq; i++) {
    const a = own[isImg.has(i) ? 0 : 1];
    const scale = 0.5 + (i % 7); // rows of different norms: the cosine must not care
    for (let c = 0; c < d; c++) h[i * d + c] = scale * (0.8 * shared[c] + 0.9 * a[c] + noise[i * d + c]);
    if (spike && i % 5 === 0) h[i * d + (i % d)] += 300 * scale;
  }
  return h;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

function expectClose(got: number, want: number, what: string) {
  if (Number.isNaN(want)) {
    expect(got, what).toBeNaN();
    return;
  }
  expect(Math.abs(got - want), `${what}: got ${got}, want ${want}`).toBeLessThanOrEqual(TOL);
}

function compare(row: ArrayLike<number>, ref: ContextRef, what: string) {
  expectClose(row[0], ref.inter, `${what} inter`);
  expectClose(row[1], ref.intra_image, `${what} intra_image`);
  expectClose(row[2], ref.intra_text, `${what} intra_text`);
}

interface Case {
  name: string;
  seq: number;
  d: number;
  image: number[];
  text: number[];
  zero?: number[];
  spike?: boolean;
}

// CHUNK = 64 set rows per partial sum; SUMS workgroups cover 64 columns; row workgroups
// are 32 (CPU adapters) or 32..256 — the shapes cross all of those boundaries.
const cases: Case[] = [
  { name: 'tiny, d = 7, BOS dropped, a zero text row', seq: 12, d: 7, image: range(3, 8), text: [1, 2, 8, 9, 10, 11], zero: [9] },
  { name: 'd = 130, BOS kept, a zero image row', seq: 40, d: 130, image: range(5, 30), text: [...range(0, 5), ...range(30, 40)], zero: [6] },
  { name: 'one image row (intra_image NaN), d = 1000', seq: 70, d: 1000, image: [20], text: [...range(1, 20), ...range(21, 70)] },
  { name: 'd = 4096, 2 image chunks, massive activations', seq: 150, d: 4096, image: range(1, 129), text: [0, ...range(129, 150)], spike: true },
  { name: 'scattered image rows, one text row (intra_text NaN)', seq: 30, d: 65, image: [2, 3, 11, 17, 29, 5], text: [0] },
  { name: 'empty image set (all NaN but intra_text)', seq: 9, d: 33, image: [], text: range(0, 9) },
];

describe('contextualization.wgsl (contextualization)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const gpu = await getGpu();
      const h = states(c.seq, c.d, c.image, c.seq * 31 + c.d, c.spike);
      for (const z of c.zero ?? []) h.fill(0, z * c.d, (z + 1) * c.d);
      const sets = contextSets(gpu, c.image, c.text);
      const ht = gpu.upload(h, [c.seq, c.d], 'h');
      const out = contextResult(gpu, 1, 5);
      contextualization(gpu, ht, sets, out, 0);
      const got = await gpu.readF32(out);
      const ref = contextualizationRef(h, c.d, c.image, c.text);
      compare(got, ref, c.name);
      expect([got[3], got[4]]).toEqual([ref.m, ref.n]);
      // the test data must exercise the formula: cosines well away from 0
      if (ref.m > 1) expect(Math.abs(ref.intra_image)).toBeGreaterThan(0.1);
      gpu.release(ht, out, sets.idx);
    });
  }

  it('rows of an [L + 1, 3] result, one call per layer, in any order', async () => {
    const gpu = await getGpu();
    const [seq, d, L1] = [50, 96, 4];
    const image = range(2, 34);
    const text = [0, 1, ...range(34, 50)];
    const sets = contextSets(gpu, { start: 2, end: 34 }, text);
    const out = contextResult(gpu, L1);
    const hs = Array.from({ length: L1 }, (_, l) => states(seq, d, image, 100 + l));
    for (const l of [2, 0, 3, 1]) contextualization(gpu, gpu.upload(hs[l], [1, seq, d], `h${l}`), sets, out, l);
    const got = await gpu.readF32(out);
    for (let l = 0; l < L1; l++) compare(got.subarray(3 * l, 3 * l + 3), contextualizationRef(hs[l], d, image, text), `layer ${l}`);
    const objs = contextScalars(got);
    expect(objs).toHaveLength(L1);
    expect(objs[0].inter).toBeCloseTo(got[0], 7);
  });

  it('contextScalars reports NaN as null', () => {
    const s = contextScalars(new Float32Array([0.5, NaN, 0.25, NaN, NaN, NaN]));
    expect(s).toEqual([
      { inter: 0.5, intra_image: null, intra_text: 0.25 },
      { inter: null, intra_image: null, intra_text: null },
    ]);
  });

  it('refuses bad sets, rows and outputs', async () => {
    const gpu = await getGpu();
    expect(() => contextSets(gpu, [1, 2], [2, 3])).toThrow(/appears twice/);
    expect(() => contextSets(gpu, { start: 3, end: 1 }, [0])).toThrow(/bad image range/);
    expect(() => contextSets(gpu, [-1], [0])).toThrow(/not a row index/);
    const h = gpu.upload(new Float32Array(4 * 8), [4, 8], 'h');
    expect(() => contextualization(gpu, h, contextSets(gpu, [1, 2], [4]))).toThrow(/index row 4 but/);
    const sets = contextSets(gpu, [1, 2], [0, 3]);
    expect(() => contextualization(gpu, h, sets, gpu.tensor([2, 4], 'f32', 'o'))).toThrow(/\[rows, 3\] or \[rows, 5\]/);
    expect(() => contextualization(gpu, h, sets, gpu.tensor([2, 3], 'f32', 'o'), 2)).toThrow(/row 2 is outside/);
  });
});
