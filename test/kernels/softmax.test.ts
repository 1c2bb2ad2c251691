import { describe, expect, it } from 'vitest';
import { softmax } from '../../src/ops/softmax.ts';
import { softmaxRef } from '../reference/softmax.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// Rows of 1 and lengths that are not multiples of the workgroup (32 on CPU adapters, 32..256
// on GPUs; 64 and 256 forced); 1024 is the VQ encoder's 32×32 mid block.
const shapes: [number, number][] = [
  [1, 1],
  [3, 7],
  [5, 33],
  [13, 1000],
  [4, 1024],
];

describe('softmax.wgsl (softmax)', () => {
  for (const [rows, D] of shapes) {
    for (const [scale, wg] of [[1, undefined], [0.0442, undefined], [1, 64], [0.0442, 256]] as const) {
      it(`rows=${rows} D=${D} scale=${scale} workgroup=${wg ?? 'auto'}`, async () => {
        const gpu = await getGpu();
        const x = randn(rows * D, rows * 31 + D, 4);
        const y = await gpu.readF32(softmax(gpu, gpu.upload(x, [rows, D], 'x'), { scale, workgroupSize: wg }));
        // f32 exp and sum against f64: a few ulp per element, 1e-5 relative over the tensor.
        expect(relErr(y, softmaxRef(x, rows, D, scale))).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('shifts by the row maximum: scores of ±1e4 neither overflow nor vanish', async () => {
    const gpu = await getGpu();
    const [rows, D] = [3, 45];
    const x = randn(rows * D, 9, 1e4);
    const y = await gpu.readF32(softmax(gpu, gpu.upload(x, [rows, D], 'x'), { scale: 0.01 }));
    expect(y.every(Number.isFinite)).toBe(true);
    expect(relErr(y, softmaxRef(x, rows, D, 0.01))).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a non-finite scale', async () => {
    const gpu = await getGpu();
    expect(() => softmax(gpu, gpu.upload(new Float32Array(6), [2, 3], 'x'), { scale: NaN })).toThrow(/scale must be finite/);
  });
});
