import { describe, expect, it } from 'vitest';
import { im2col, patchEmbed } from '../../src/ops/patch-embed.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { patchEmbedRef } from '../reference/patch-embed.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// CLIP-like (3 channels, square), non-square with a remainder the conv drops, a patch size
// of 1, and P = 14 as in CLIP ViT-L/14 / EVA ViT-g/14 (on a small image).
const cases: { C: number; H: number; W: number; P: number; D: number; bias: boolean; wdt: 'f32' | 'f16' }[] = [
  { C: 1, H: 1, W: 1, P: 1, D: 1, bias: false, wdt: 'f32' },
  { C: 3, H: 8, W: 8, P: 4, D: 5, bias: false, wdt: 'f32' },
  { C: 3, H: 11, W: 17, P: 5, D: 9, bias: true, wdt: 'f16' },
  { C: 2, H: 6, W: 5, P: 1, D: 3, bias: true, wdt: 'f32' },
  { C: 3, H: 42, W: 28, P: 14, D: 33, bias: false, wdt: 'f16' },
];

describe('im2col.wgsl (patchEmbed)', () => {
  for (const { C, H, W, P, D, bias, wdt } of cases) {
    it(`C=${C} H=${H} W=${W} P=${P} D=${D} bias=${bias} ${wdt} weight`, async () => {
      const gpu = await getGpu();
      const px = randn(C * H * W, H * W + P, 2);
      const w = randn(D * C * P * P, D + P, 0.3);
      const b = randn(D, D);
      const wt = wdt === 'f16' ? gpu.upload(toF16(w), [D, C, P, P], 'w', 'f16') : gpu.upload(w, [D, C, P, P], 'w');
      const y = await gpu.readF32(
        patchEmbed(gpu, gpu.upload(px, [1, C, H, W], 'pixels'), wt, { bias: bias ? gpu.upload(b, [D], 'b') : undefined }),
      );
      // f16 weight: the reference convolves with the same f16-rounded weight, so the fp32 tolerance applies.
      const want = patchEmbedRef(px, C, H, W, wdt === 'f16' ? roundF16(w) : w, D, P, bias ? b : undefined);
      expect(y.length).toBe(Math.floor(H / P) * Math.floor(W / P) * D);
      expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('im2col alone: patch q = (py, px), column k = (c, ky, kx)', async () => {
    const gpu = await getGpu();
    const [C, H, W, P] = [2, 4, 6, 2];
    const px = Float32Array.from({ length: C * H * W }, (_, i) => i);
    const got = await gpu.readF32(im2col(gpu, gpu.upload(px, [C, H, W], 'pixels'), P));
    // patch 4 = row 1, column 1 of a 2×3 grid: pixels rows 2..3, columns 2..3; channel 1 then
    const K = C * P * P;
    const at = (c: number, y: number, x: number) => c * H * W + y * W + x;
    expect(Array.from(got.subarray(4 * K, 5 * K))).toEqual([at(0, 2, 2), at(0, 2, 3), at(0, 3, 2), at(0, 3, 3), at(1, 2, 2), at(1, 2, 3), at(1, 3, 2), at(1, 3, 3)]);
  });

  it('refuses a channel or patch-size mismatch', async () => {
    const gpu = await getGpu();
    const pixels = gpu.upload(new Float32Array(3 * 4 * 4), [3, 4, 4], 'pixels');
    expect(() => patchEmbed(gpu, pixels, gpu.upload(new Float32Array(2 * 2 * 4), [2, 2, 2, 2], 'w'))).toThrow(/have 3 channels/);
    expect(() => patchEmbed(gpu, pixels, gpu.upload(new Float32Array(2 * 3 * 4), [2, 3, 2, 2], 'w'), { patchSize: 4 })).toThrow(/patch_size 4/);
  });
});
