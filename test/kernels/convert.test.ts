import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, uploadBf16 } from '../../src/ops/convert.ts';
import { bf16BitsRef, f16BitsRef } from '../reference/convert.ts';
import { getGpu, rng } from '../helpers/gpu.ts';

// Every test compares bit-exact values (the conversions are exact): −0, subnormals, the
// largest finite values, ±inf; NaN only as NaN.
const special = [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x007f, 0x0080, 0x7f7f, 0x7f80, 0xff80, 0x7fc0, 0x3f80];

function bits16(n: number, seed: number): Uint16Array {
  const r = rng(seed);
  const a = Uint16Array.from({ length: n }, () => Math.floor(r() * 65536));
  a.set(special.slice(0, n));
  return a;
}

function same(got: Float32Array, want: (i: number) => number): void {
  const bad: string[] = [];
  for (let i = 0; i < got.length && bad.length < 5; i++) {
    const w = Math.fround(want(i));
    if (!(Object.is(got[i], w) || (Number.isNaN(got[i]) && Number.isNaN(w)))) bad.push(`[${i}] ${got[i]} ≠ ${w}`);
  }
  expect(bad).toEqual([]);
}

// 256 words per workgroup: odd counts (a half-filled last word), and counts off 512.
const shapes: number[][] = [[1], [3, 7], [1024], [5, 333]];

describe('convert.wgsl', () => {
  for (const shape of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    it(`f16 → f32 [${shape}]`, async () => {
      const gpu = await getGpu();
      const h = bits16(n, n);
      const y = await gpu.readF32(f16ToF32(gpu, gpu.upload(h, shape, 'h', 'f16')));
      expect(y.length).toBe(n);
      same(y, (i) => f16BitsRef(h[i]));
    });
    it(`bf16 → f32 [${shape}]`, async () => {
      const gpu = await getGpu();
      const h = bits16(n, n + 1);
      const out = bf16ToF32(gpu, uploadBf16(gpu, h, 'b'), shape);
      expect(out.shape).toEqual(shape);
      same(await gpu.readF32(out), (i) => bf16BitsRef(h[i]));
    });
  }

  it('refuses wrong dtypes and word counts', async () => {
    const gpu = await getGpu();
    expect(() => f16ToF32(gpu, gpu.upload(new Float32Array(2), [2], 'x'))).toThrow(/is not f16/);
    expect(() => bf16ToF32(gpu, gpu.upload(new Uint32Array(2), [2], 'w', 'u32'), [5])).toThrow(/needs ⌈5\/2⌉ = 3 words/);
  });
});
