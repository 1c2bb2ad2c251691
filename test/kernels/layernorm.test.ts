import { describe, expect, it } from 'vitest';
import { layerNorm } from '../../src/ops/layernorm.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { layerNormRef } from '../reference/layernorm.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// Workgroup sizes: 32 on CPU adapters, else powers of two in [32, 256] (≈ D/4); the tests
// also force 64 and 256 so the GPU sizes run here too. D below, between and above them,
// not multiples of anything, and one-element rows.
const shapes: [number, number][] = [
  [1, 1],
  [3, 7],
  [5, 33],
  [17, 768],
  [4, 1030],
  [2, 4096],
];

describe('layernorm.wgsl (layerNorm)', () => {
  for (const [rows, D] of shapes) {
    for (const [wdt, wg] of [['f32', undefined], ['f16', undefined], ['f32', 64], ['f16', 256]] as const) {
      it(`${wdt} params rows=${rows} D=${D} workgroup=${wg ?? 'auto'}`, async () => {
        const gpu = await getGpu();
        const x = randn(rows * D, rows * 31 + D, 3);
        const w = randn(D, D + 1, 1.5);
        const b = randn(D, D + 2, 0.5);
        const up = (a: Float32Array, name: string) => (wdt === 'f16' ? gpu.upload(toF16(a), [D], name, 'f16') : gpu.upload(a, [D], name));
        const y = await gpu.readF32(layerNorm(gpu, gpu.upload(x, [rows, D], 'x'), up(w, 'w'), up(b, 'b'), 1e-5, { workgroupSize: wg }));
        // f16 params: the reference uses the same f16-rounded values, so the fp32 tolerance applies.
        const r = (a: Float32Array) => (wdt === 'f16' ? roundF16(a) : a);
        const want = layerNormRef(x, rows, D, r(w), r(b), 1e-5);
        // D = 1: x − mean = 0 exactly, so y = bias on both sides.
        expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('no bias, mixed f16 weight, leading dims [2, 3, D]', async () => {
    const gpu = await getGpu();
    const D = 100;
    const x = randn(6 * D, 5);
    const w = randn(D, 6);
    const y = await gpu.readF32(layerNorm(gpu, gpu.upload(x, [2, 3, D], 'x'), gpu.upload(toF16(w), [D], 'w', 'f16'), null, 1e-6));
    expect(relErr(y, layerNormRef(x, 6, D, roundF16(w), undefined, 1e-6))).toBeLessThanOrEqual(1e-5);
  });

  it('per-row parameters [R, D]: row r takes row r mod R (Chameleon per-head q/k norm)', async () => {
    const gpu = await getGpu();
    const [pos, heads, D] = [5, 3, 20];
    const x = randn(pos * heads * D, 11, 2);
    const w = randn(heads * D, 12, 1.5);
    const b = randn(heads * D, 13, 0.5);
    const y = await gpu.readF32(layerNorm(gpu, gpu.upload(x, [pos, heads, D], 'x'), gpu.upload(toF16(w), [heads, D], 'w', 'f16'), gpu.upload(b, [heads, D], 'b'), 1e-5));
    const want = new Float32Array(pos * heads * D);
    const wr = roundF16(w);
    for (let r = 0; r < pos * heads; r++) {
      const h = r % heads;
      want.set(layerNormRef(x.subarray(r * D, (r + 1) * D), 1, D, wr.subarray(h * D, (h + 1) * D), b.subarray(h * D, (h + 1) * D), 1e-5), r * D);
    }
    expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
    // parameters for 4 rows cannot serve 15
    expect(() => layerNorm(gpu, gpu.upload(x, [pos * heads, D], 'x'), gpu.upload(randn(4 * D, 1), [4, D], 'w'), null, 1e-5)).toThrow(/does not have 20 elements/);
  });

  it('large common offset (|mean| ≫ std) stays accurate', async () => {
    // A one-pass Σx² − D·mean² formula loses every digit here, and even a centred second
    // pass is off by ulp(100)/std ≈ 7e-4 from the f32 rounding of the mean alone; the
    // kernel's correction term (see layernorm.wgsl) keeps the fp32 tolerance.
    const gpu = await getGpu();
    const [rows, D] = [4, 1024];
    const x = randn(rows * D, 9, 0.01).map((v) => v + 100);
    const w = new Float32Array(D).fill(1);
    const y = await gpu.readF32(layerNorm(gpu, gpu.upload(x, [rows, D], 'x'), gpu.upload(w, [D], 'w'), null, 1e-5));
    expect(relErr(y, layerNormRef(x, rows, D, w, undefined, 1e-5))).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a weight of the wrong size', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(new Float32Array(6), [2, 3], 'x');
    const w = gpu.upload(new Float32Array(4), [4], 'w');
    expect(() => layerNorm(gpu, x, w, null, 1e-5)).toThrow(/does not have 3 elements/);
  });
});
