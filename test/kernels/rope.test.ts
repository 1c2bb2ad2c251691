import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rope, ropeCosSin, ropeInvFreq, ropeQk, ropeTable } from '../../src/ops/rope.ts';
import { ropeRef } from '../reference/rope.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// torch's values for dim 128, base 10000 (test/reference/rope_torch.py): f32 bit patterns.
const torch = JSON.parse(readFileSync(new URL('../fixtures/rope/torch-rope-dim128.json', import.meta.url), 'utf8')) as {
  dim: number; base: number; positions: number[]; inv_freq: number[]; freqs: number[]; cos: number[]; sin: number[];
};
const fromBits = (b: number[]) => new Float32Array(new Uint32Array(b).buffer);
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('rope table (host, HF f32 rounding)', () => {
  it('inv_freq matches torch bit for bit', () => {
    expect(bitsOf(ropeInvFreq(torch.dim, torch.base))).toEqual(torch.inv_freq);
  });

  it('cos/sin match torch within 1 ulp up to position 4095', () => {
    const half = torch.dim / 2;
    const { cos, sin } = ropeCosSin(torch.dim, 4096, torch.base);
    const tc = new Uint32Array(torch.cos), ts = new Uint32Array(torch.sin);
    let worst = 0;
    torch.positions.forEach((p, k) => {
      const ours = new Uint32Array(Float32Array.from([...cos.subarray(p * half, (p + 1) * half), ...sin.subarray(p * half, (p + 1) * half)]).buffer);
      for (let i = 0; i < half; i++) {
        // same sign, so the bit patterns differ by the number of ulps between them
        worst = Math.max(worst, Math.abs(ours[i] - tc[k * half + i]), Math.abs(ours[half + i] - ts[k * half + i]));
      }
    });
    expect(worst).toBeLessThanOrEqual(1);
  });
});

// Kernel: one invocation per (token, head, pair); 64 per workgroup. Shapes with odd head
// counts, head_dim not a multiple of 4, and counts not multiples of 64.
const shapes: { seq: number; heads: number; hd: number; pos0: number }[] = [
  { seq: 1, heads: 1, hd: 2, pos0: 0 },
  { seq: 5, heads: 3, hd: 6, pos0: 2 },
  { seq: 13, heads: 4, hd: 32, pos0: 0 },
  { seq: 1, heads: 7, hd: 128, pos0: 300 }, // one decode step with a KV cache
];

describe('rope.wgsl', () => {
  for (const { seq, heads, hd, pos0 } of shapes) {
    it(`seq=${seq} heads=${heads} head_dim=${hd} pos0=${pos0}`, async () => {
      const gpu = await getGpu();
      const maxPos = 512;
      const rt = ropeTable(gpu, { headDim: hd, maxPos, theta: 10000 });
      const x = randn(seq * heads * hd, seq * 3 + hd);
      const y = await gpu.readF32(rope(gpu, gpu.upload(x, [seq, heads, hd], 'q'), rt, { pos0 }));
      const { cos, sin } = ropeCosSin(hd, maxPos, 10000);
      const want = ropeRef(x, seq, heads, hd, pos0, (p, i) => cos[p * (hd / 2) + i], (p, i) => sin[p * (hd / 2) + i]);
      expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
      gpu.release(rt.table);
    });
  }

  it('in place on [seq, hidden] at positions 4090..4095 against torch cos/sin', async () => {
    // End to end against torch's own table: positions near 4096 are where f32 angle rounding
    // and WGSL's imprecise cos/sin would show. Torch's cos/sin differ from ours by ≤ 1 ulp.
    const gpu = await getGpu();
    const [seq, heads, hd, pos0] = [6, 2, 128, 4090];
    const rt = ropeTable(gpu, { headDim: hd, maxPos: 4096 });
    const x = randn(seq * heads * hd, 77);
    const xt = gpu.upload(x, [seq, heads * hd], 'k');
    const out = rope(gpu, xt, rt, { pos0, inPlace: true });
    expect(out).toBe(xt);
    const y = await gpu.readF32(xt);
    // torch's cos/sin at 4095 from the fixture; the other positions from the host table
    const { cos, sin } = ropeCosSin(hd, 4096, 10000);
    const k = torch.positions.indexOf(4095);
    const tc = fromBits(torch.cos), ts = fromBits(torch.sin);
    const at = (tbl: Float32Array, t: Float32Array) => (p: number, i: number) => (p === 4095 ? t[k * 64 + i] : tbl[p * 64 + i]);
    const want = ropeRef(x, seq, heads, hd, pos0, at(cos, tc), at(sin, ts));
    expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
    gpu.release(rt.table);
  });

  // q and k in one dispatch (PAIR): different head counts (grouped-query), decode and prefill,
  // each against the reference at the same positions
  for (const { seq, hq, hk, hd, pos0 } of [{ seq: 1, hq: 4, hk: 4, hd: 16, pos0: 31 }, { seq: 7, hq: 6, hk: 2, hd: 10, pos0: 3 }, { seq: 1, hq: 7, hk: 1, hd: 128, pos0: 300 }]) {
    it(`q and k in one dispatch: seq=${seq} heads ${hq} + ${hk} head_dim=${hd} pos0=${pos0}`, async () => {
      const gpu = await getGpu();
      const maxPos = 512;
      const rt = ropeTable(gpu, { headDim: hd, maxPos, theta: 10000 });
      const q = randn(seq * hq * hd, seq + hd);
      const k = randn(seq * hk * hd, seq + 2 * hd);
      const qt = gpu.upload(q, [seq, hq * hd], 'q');
      const kt = gpu.upload(k, [seq, hk, hd], 'k');
      ropeQk(gpu, qt, kt, rt, pos0);
      const { cos, sin } = ropeCosSin(hd, maxPos, 10000);
      const c = (p: number, i: number) => cos[p * (hd / 2) + i];
      const sn = (p: number, i: number) => sin[p * (hd / 2) + i];
      expect(relErr(await gpu.readF32(qt), ropeRef(q, seq, hq, hd, pos0, c, sn))).toBeLessThanOrEqual(1e-5);
      expect(relErr(await gpu.readF32(kt), ropeRef(k, seq, hk, hd, pos0, c, sn))).toBeLessThanOrEqual(1e-5);
      gpu.release(rt.table, qt, kt);
    });
  }

  it('refuses positions past the table and mis-shaped x', async () => {
    const gpu = await getGpu();
    const rt = ropeTable(gpu, { headDim: 4, maxPos: 8 });
    const x = gpu.upload(new Float32Array(3 * 8), [3, 2, 4], 'q');
    expect(() => rope(gpu, x, rt, { pos0: 6 })).toThrow(/exceed the table's 8 positions/);
    expect(() => rope(gpu, gpu.upload(new Float32Array(3 * 6), [3, 6], 'q'), rt)).toThrow(/is not \[seq, heads, 4\]/);
    expect(() => ropeQk(gpu, x, gpu.upload(new Float32Array(2 * 8), [2, 2, 4], 'k'), rt)).toThrow(/different numbers of tokens/);
    expect(() => ropeQk(gpu, x, x, rt)).toThrow(/share a buffer/);
    gpu.release(rt.table);
  });
});
