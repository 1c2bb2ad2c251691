import { describe, expect, it } from 'vitest';
import { linear } from '../../src/ops/linear.ts';
import { toF16, roundF16 } from '../../src/gpu/half.ts';
import { linearRef } from '../reference/matmul.ts';
import type { ActName } from '../reference/activations.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// Shapes: tile = 4×4 per invocation, 32×32 per workgroup. Include M, N, K that are not
// multiples of 4 or 32 (scalar-K path), K % 4 == 0 (vec4 path), single rows and columns.
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [5, 7, 3],
  [33, 65, 20],
  [64, 96, 128],
  [37, 130, 257],
  [3, 200, 1024],
];

describe('matmul.wgsl (linear)', () => {
  for (const [M, N, K] of shapes) {
    for (const wdt of ['f32', 'f16'] as const) {
      it(`${wdt} weights M=${M} N=${N} K=${K}`, async () => {
        const gpu = await getGpu();
        const x = randn(M * K, M * 7 + K);
        const w = randn(N * K, N * 13 + K, 0.5);
        const xt = gpu.upload(x, [M, K], 'x');
        const wt = wdt === 'f16' ? gpu.upload(toF16(w), [N, K], 'w', 'f16') : gpu.upload(w, [N, K], 'w');
        const y = await gpu.readF32(linear(gpu, xt, wt));
        // f16 path: the reference uses the same f16-rounded weights, so only accumulation
        // order differs — the fp32 tolerance applies to both.
        const want = linearRef(x, wdt === 'f16' ? roundF16(w) : w, M, N, K);
        expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  const epilogues: { act: ActName; bias: boolean; residual: boolean }[] = [
    { act: 'none', bias: true, residual: false },
    { act: 'gelu', bias: true, residual: false },
    { act: 'quick_gelu', bias: false, residual: true },
    { act: 'silu', bias: true, residual: true },
  ];
  for (const e of epilogues) {
    it(`epilogue act=${e.act} bias=${e.bias} residual=${e.residual}`, async () => {
      const gpu = await getGpu();
      const [M, N, K] = [19, 45, 36];
      const x = randn(M * K, 1);
      const w = randn(N * K, 2, 0.5);
      const b = randn(N, 3);
      const r = randn(M * N, 4);
      const y = await gpu.readF32(
        linear(gpu, gpu.upload(x, [M, K], 'x'), gpu.upload(w, [N, K], 'w'), {
          act: e.act,
          bias: e.bias ? gpu.upload(b, [N], 'b') : undefined,
          residual: e.residual ? gpu.upload(r, [M, N], 'r') : undefined,
        }),
      );
      const want = linearRef(x, w, M, N, K, { act: e.act, bias: e.bias ? b : undefined, residual: e.residual ? r : undefined });
      expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('refuses mismatched inner sizes', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(new Float32Array(6), [2, 3], 'x');
    const w = gpu.upload(new Float32Array(8), [2, 4], 'w');
    expect(() => linear(gpu, x, w)).toThrow(/inner sizes differ/);
  });
});
