import { describe, expect, it } from 'vitest';
import { rmsNorm } from '../../src/ops/rmsnorm.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { rmsNormRef } from '../reference/rmsnorm.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// Workgroup sizes: 32 on CPU adapters, else 32..256 by D; 128 and 256 are forced too.
const shapes: [number, number][] = [
  [1, 1],
  [3, 7],
  [5, 33],
  [13, 1000],
  [2, 4096],
];

describe('rmsnorm.wgsl (rmsNorm)', () => {
  for (const [rows, D] of shapes) {
    for (const [wdt, wg] of [['f32', undefined], ['f16', undefined], ['f32', 128], ['f16', 256]] as const) {
      it(`${wdt} weight rows=${rows} D=${D} workgroup=${wg ?? 'auto'}`, async () => {
        const gpu = await getGpu();
        const x = randn(rows * D, rows * 17 + D, 2);
        const w = randn(D, D + 3, 1.5);
        const wt = wdt === 'f16' ? gpu.upload(toF16(w), [D], 'w', 'f16') : gpu.upload(w, [D], 'w');
        const y = await gpu.readF32(rmsNorm(gpu, gpu.upload(x, [rows, D], 'x'), wt, 1e-5, { workgroupSize: wg }));
        // f16 weight: the reference uses the same f16-rounded weight, so the fp32 tolerance applies.
        const want = rmsNormRef(x, rows, D, wdt === 'f16' ? roundF16(w) : w, 1e-5);
        expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('eps matters for tiny rows (eps = 1e-6, |x| ~ 1e-3)', async () => {
    const gpu = await getGpu();
    const [rows, D] = [3, 64];
    const x = randn(rows * D, 4, 1e-3);
    const w = randn(D, 5);
    const y = await gpu.readF32(rmsNorm(gpu, gpu.upload(x, [rows, D], 'x'), gpu.upload(w, [D], 'w'), 1e-6));
    expect(relErr(y, rmsNormRef(x, rows, D, w, 1e-6))).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a weight of the wrong size', async () => {
    const gpu = await getGpu();
    expect(() => rmsNorm(gpu, gpu.upload(new Float32Array(6), [2, 3], 'x'), gpu.upload(new Float32Array(2), [2], 'w'), 1e-5)).toThrow(
      /does not have 3 elements/,
    );
  });
});
