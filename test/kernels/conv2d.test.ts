import { describe, expect, it } from 'vitest';
import { conv2d, type Padding } from '../../src/ops/conv2d.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { conv2dRef } from '../reference/conv.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// The convolutions of Chameleon's VQ encoder (3×3 stride 1 padding 1; 3×3 stride 2 with
// F.pad (0, 1, 0, 1) = one zero row below and column right; 1×1) on odd sizes that divide
// neither the matmul tiles nor the stride, channels not multiples of 4, f32 and f16
// weights, and output rows in chunks. Tolerance: f32 accumulation over C·KH·KW ≤ 300
// products, against an f64 reference with the same (f16-rounded) weights: 1e-5 of scale.
type Case = { H: number; W: number; C: number; D: number; k: number; stride: number; pad: Padding; bias: boolean; wdt: 'f32' | 'f16'; maxPatchBytes?: number };
const same = (k: number): Padding => [k >> 1, k >> 1, k >> 1, k >> 1];
const down: Padding = [0, 0, 1, 1];
const cases: Case[] = [
  { H: 1, W: 1, C: 1, D: 1, k: 3, stride: 1, pad: same(3), bias: true, wdt: 'f32' },
  { H: 5, W: 7, C: 3, D: 5, k: 3, stride: 1, pad: same(3), bias: true, wdt: 'f32' },
  { H: 9, W: 6, C: 32, D: 33, k: 3, stride: 1, pad: same(3), bias: false, wdt: 'f16' },
  { H: 8, W: 8, C: 4, D: 4, k: 3, stride: 2, pad: down, bias: true, wdt: 'f32' },
  { H: 7, W: 9, C: 5, D: 5, k: 3, stride: 2, pad: down, bias: true, wdt: 'f16' },
  { H: 4, W: 5, C: 7, D: 3, k: 1, stride: 1, pad: [0, 0, 0, 0], bias: true, wdt: 'f32' },
  { H: 3, W: 3, C: 65, D: 66, k: 1, stride: 1, pad: [0, 0, 0, 0], bias: false, wdt: 'f16' },
  // chunks of 2 output rows (the last one short)
  { H: 11, W: 5, C: 3, D: 6, k: 3, stride: 1, pad: same(3), bias: true, wdt: 'f32', maxPatchBytes: 2 * 5 * 27 * 4 },
  { H: 9, W: 9, C: 2, D: 3, k: 3, stride: 2, pad: down, bias: false, wdt: 'f32', maxPatchBytes: 1 },
];

describe('im2col.wgsl + matmul (conv2d)', () => {
  for (const c of cases) {
    it(`${c.k}×${c.k} stride ${c.stride} pad ${c.pad} H=${c.H} W=${c.W} C=${c.C} D=${c.D} ${c.wdt}${c.bias ? ' bias' : ''}${c.maxPatchBytes ? ' chunked' : ''}`, async () => {
      const gpu = await getGpu();
      const x = randn(c.H * c.W * c.C, c.H * 7 + c.C, 2);
      const w = randn(c.D * c.C * c.k * c.k, c.D + c.k, 0.3);
      const b = randn(c.D, c.D + 1, 0.5);
      const wt = c.wdt === 'f16' ? gpu.upload(toF16(w), [c.D, c.C, c.k, c.k], 'w', 'f16') : gpu.upload(w, [c.D, c.C, c.k, c.k], 'w');
      const out = conv2d(gpu, gpu.upload(x, [c.H, c.W, c.C], 'x'), wt, { bias: c.bias ? gpu.upload(b, [c.D], 'b') : undefined, stride: c.stride, pad: c.pad, maxPatchBytes: c.maxPatchBytes });
      const want = conv2dRef(x, c.H, c.W, c.C, c.wdt === 'f16' ? roundF16(w) : w, c.D, c.k, c.k, c.stride, c.pad, c.bias ? b : undefined);
      expect(out.shape).toEqual([want.Ho, want.Wo, c.D]);
      expect(relErr(await gpu.readF32(out), want.y)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('stride 2 with (0, 1, 0, 1): the output halves an even side, and the padded row and column are zeros', async () => {
    // a weight that reads only the kernel's bottom-right tap: output (oy, ox) = x[2oy + 2, 2ox + 2], 0 past the edge
    const gpu = await getGpu();
    const [H, W] = [4, 6];
    const x = Float32Array.from({ length: H * W }, (_, i) => i + 1);
    const w = new Float32Array(9);
    w[8] = 1;
    const y = await gpu.readF32(conv2d(gpu, gpu.upload(x, [H, W, 1], 'x'), gpu.upload(w, [1, 1, 3, 3], 'w'), { stride: 2, pad: [0, 0, 1, 1] }));
    expect(Array.from(y)).toEqual([x[2 * W + 2], x[2 * W + 4], 0, 0, 0, 0]);
  });

  it('refuses a channel mismatch', async () => {
    const gpu = await getGpu();
    expect(() => conv2d(gpu, gpu.upload(new Float32Array(12), [2, 2, 3], 'x'), gpu.upload(new Float32Array(36), [2, 2, 3, 3], 'w'))).toThrow(/3 channels, weight .* expects 2/);
  });
});
