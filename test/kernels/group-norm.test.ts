import { describe, expect, it } from 'vitest';
import { groupNorm } from '../../src/ops/group-norm.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { groupNormRef } from '../reference/conv.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// 32 groups as in Chameleon's VQ encoder (C = 32, 64, 96, 128: 1..4 channels a group), other
// group counts, position counts that divide no workgroup size, workgroups 32 / 256 forced,
// SiLU fused or not, f32/f16 parameters. A group is cut into chunks of ≥ 8 elements per
// invocation, at most 256 chunks (ops/group-norm.ts): with 32 invocations, groups of 300 to
// 65 600 elements make 2, 8, 64 and 256 chunks (the last one growing the chunk to 257), none
// ending on a chunk boundary. A common offset (|mean| ≫ std) checks the corrected two-pass
// moments, within a chunk and across chunks. Tolerance 1e-5 of scale: the f32 moments carry
// ≈ 1e-7 · √(elements per invocation + log2 invocations) relative error, ≪ 1e-5 at 2 050
// per invocation; a one-pass E[x²] − E[x]² at offset 100, std 2 would be off by ≳ 1e-4 (ulp(1e4) of 4).
const shapes: { N: number; C: number; G: number; silu: boolean; wdt: 'f32' | 'f16'; wg?: number; offset?: number }[] = [
  { N: 1, C: 32, G: 32, silu: false, wdt: 'f32' },
  { N: 7, C: 32, G: 32, silu: true, wdt: 'f32' },
  { N: 45, C: 64, G: 32, silu: true, wdt: 'f16', wg: 256 },
  { N: 100, C: 96, G: 32, silu: false, wdt: 'f32', wg: 32 },
  { N: 13, C: 10, G: 2, silu: true, wdt: 'f16' },
  { N: 50, C: 32, G: 32, silu: false, wdt: 'f32', offset: 100 },
  { N: 1000, C: 64, G: 32, silu: true, wdt: 'f32', wg: 32 },
  { N: 333, C: 96, G: 32, silu: false, wdt: 'f16', wg: 32, offset: 100 },
  { N: 4095, C: 128, G: 32, silu: true, wdt: 'f32', wg: 32 },
  { N: 4100, C: 32, G: 2, silu: false, wdt: 'f32', wg: 32, offset: 100 },
];

describe('group_norm.wgsl (groupNorm)', () => {
  for (const s of shapes) {
    it(`N=${s.N} C=${s.C} G=${s.G}${s.silu ? ' + SiLU' : ''} ${s.wdt} params workgroup=${s.wg ?? 'auto'}${s.offset ? ` offset ${s.offset}` : ''}`, async () => {
      const gpu = await getGpu();
      const x = randn(s.N * s.C, s.N * 3 + s.C, 2).map((v) => v + (s.offset ?? 0));
      const w = randn(s.C, s.C + 1, 1.5);
      const b = randn(s.C, s.C + 2, 0.5);
      const up = (a: Float32Array, name: string) => (s.wdt === 'f16' ? gpu.upload(toF16(a), [s.C], name, 'f16') : gpu.upload(a, [s.C], name));
      const y = await gpu.readF32(groupNorm(gpu, gpu.upload(x, [s.N, s.C], 'x'), s.G, up(w, 'w'), up(b, 'b'), 1e-6, { silu: s.silu, workgroupSize: s.wg }));
      const r = (a: Float32Array) => (s.wdt === 'f16' ? roundF16(a) : a);
      expect(relErr(y, groupNormRef(x, s.N, s.C, s.G, r(w), r(b), 1e-6, s.silu))).toBeLessThanOrEqual(1e-5);
    });
  }

  it('[H, W, C] input: the groups span every position', async () => {
    const gpu = await getGpu();
    const [H, W, C] = [3, 5, 64];
    const x = randn(H * W * C, 4, 3);
    const w = randn(C, 5);
    const b = randn(C, 6);
    const y = groupNorm(gpu, gpu.upload(x, [H, W, C], 'x'), 32, gpu.upload(w, [C], 'w'), gpu.upload(b, [C], 'b'), 1e-6);
    expect(y.shape).toEqual([H, W, C]);
    expect(relErr(await gpu.readF32(y), groupNormRef(x, H * W, C, 32, w, b, 1e-6))).toBeLessThanOrEqual(1e-5);
  });

  it('refuses channels that do not split into the groups', async () => {
    const gpu = await getGpu();
    const p = gpu.upload(new Float32Array(40), [40], 'p');
    expect(() => groupNorm(gpu, gpu.upload(new Float32Array(80), [2, 40], 'x'), 32, p, p, 1e-6)).toThrow(/do not split into 32 groups/);
  });
});
