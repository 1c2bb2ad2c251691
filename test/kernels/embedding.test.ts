import { describe, expect, it } from 'vitest';
import { embedding, embeddingFromIds, type EmbeddingPart } from '../../src/ops/embedding.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { embeddingRef } from '../reference/embedding.ts';
import { getGpu, randn, rng } from '../helpers/gpu.ts';

/** Uploads table [vocab, D] cut at the given row boundaries, each part f32 or f16. */
function parts(gpu: Gpu, table: Float32Array, D: number, cuts: number[], dtypes: ('f32' | 'f16')[]): EmbeddingPart[] {
  const out: EmbeddingPart[] = [];
  for (let k = 0; k + 1 < cuts.length; k++) {
    const [a, b] = [cuts[k], cuts[k + 1]];
    const rows = table.subarray(a * D, b * D);
    const t = dtypes[k] === 'f16' ? gpu.upload(toF16(rows), [b - a, D], `emb[${a}:${b}]`, 'f16') : gpu.upload(rows, [b - a, D], `emb[${a}:${b}]`);
    out.push({ tensor: t, rowStart: a });
  }
  return out.reverse(); // order of the list must not matter
}

const ids = (n: number, vocab: number, seed: number) => {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * vocab));
};

// 256 outputs per workgroup: n·D below, at and off multiples of it; odd D for f16 halves.
const cases: { vocab: number; D: number; n: number; cuts: number[]; dtypes: ('f32' | 'f16')[] }[] = [
  { vocab: 5, D: 1, n: 3, cuts: [0, 5], dtypes: ['f32'] },
  { vocab: 40, D: 7, n: 11, cuts: [0, 40], dtypes: ['f16'] },
  { vocab: 50, D: 33, n: 29, cuts: [0, 17, 18, 50], dtypes: ['f16', 'f32', 'f16'] },
  { vocab: 300, D: 64, n: 64, cuts: [0, 128, 256, 300], dtypes: ['f32', 'f32', 'f32'] },
];

describe('embedding.wgsl', () => {
  for (const { vocab, D, n, cuts, dtypes } of cases) {
    it(`vocab=${vocab} D=${D} n=${n} parts=${cuts.length - 1} (${dtypes.join(',')})`, async () => {
      const gpu = await getGpu();
      const table = randn(vocab * D, vocab + D);
      const want = new Float32Array(table);
      // f16 parts: the reference holds the same f16-rounded rows; a gather is exact, so equality is expected
      for (let k = 0; k < dtypes.length; k++) if (dtypes[k] === 'f16') want.set(roundF16(table.subarray(cuts[k] * D, cuts[k + 1] * D)), cuts[k] * D);
      const id = ids(n, vocab, n);
      id[0] = vocab - 1; // the last row of the last part
      if (n > 1) id[1] = 0;
      const ps = parts(gpu, table, D, cuts, dtypes);
      const got = await gpu.readF32(embeddingFromIds(gpu, id, ps));
      expect(Array.from(got)).toEqual(Array.from(embeddingRef(id, want, vocab, D)));
    });
  }

  it('GPU ids: a whole table as one tensor; out-of-range ids give zero rows', async () => {
    const gpu = await getGpu();
    const [vocab, D] = [10, 6];
    const table = randn(vocab * D, 3);
    const id = Int32Array.from([3, -1, 9, 10, 0]);
    const got = await gpu.readF32(embedding(gpu, gpu.upload(id, [5], 'ids'), gpu.upload(table, [vocab, D], 'emb')));
    expect(Array.from(got)).toEqual(Array.from(embeddingRef(id, table, vocab, D)));
    expect(Array.from(got.subarray(D, 2 * D))).toEqual(new Array(D).fill(0));
  });

  it('host ids are validated with a clear error', async () => {
    const gpu = await getGpu();
    const t = gpu.upload(new Float32Array(8 * 2), [8, 2], 'emb');
    expect(() => embeddingFromIds(gpu, [1, 8], t)).toThrow(/token id 8 at position 1 is outside the vocabulary of 8 rows/);
    expect(() => embeddingFromIds(gpu, [-2], [{ tensor: t, rowStart: 0 }])).toThrow(/token id -2/);
    expect(() => embeddingFromIds(gpu, [0], [{ tensor: t, rowStart: 1 }])).toThrow(/must tile the vocabulary/);
  });
});
