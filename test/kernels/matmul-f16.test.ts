/**
 * shaders/matmul.wgsl at precision f16 (ONE_PRODUCT, `--precision f16`) on the real device:
 * every variant forced, against test/reference/matmul-f16.ts — x and W rounded to f16, the
 * exact sum, and the f16 roundings after bias, activation and residual, as HF's fp16 Linear.
 * The reference gives each output the f16 values an f32 sum in any order can round to
 * (its header derives the window); an output must be one of them: bit-exact f16 results,
 * not a tolerance. Shapes as test/kernels/matmul.test.ts: M, N off the tiles, K % 4 != 0,
 * K > 1024 (the subgroup kernel's passes, which must add in f32 and round once), M ≤ 8.
 *
 * The check can fail: a problem whose x lie 0.45 of an f16 step above f16 values, with the
 * products all positive (so skipping x's rounding shifts every sum the same way, by about
 * 2⁻¹¹ of it), is failed by the f32 kernels and by a reference that does not round x.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { f16BitsToF32, f32ToF16Bits, roundF16, toF16 } from '../../src/gpu/half.ts';
import { kernelRefusal, linear, subgroupRows, type LinearOptions, type MatmulKernel } from '../../src/ops/linear.ts';
import { matmulPrecision, setMatmulPrecision } from '../../src/ops/precision.ts';
import type { ActName } from '../reference/activations.ts';
import { linearF16Candidates, outsideCandidates } from '../reference/matmul-f16.ts';
import { getGpu, randn } from '../helpers/gpu.ts';

type Shape = [number, number, number];
const cases: { kernel: MatmulKernel; shapes: Shape[] }[] = [
  { kernel: 'tile4x4', shapes: [[5, 7, 3], [37, 130, 257]] },
  { kernel: 'subgroup', shapes: [[5, 7, 3], [1, 33, 100], [2, 70, 64], [37, 130, 257], [19, 45, 2084]] },
  { kernel: 'gemv', shapes: [[3, 33, 36], [8, 130, 2084]] },
  { kernel: 'tiled', shapes: [[9, 5, 7], [130, 129, 36]] },
  { kernel: 'tiled16', shapes: [[37, 130, 257], [200, 64, 1030]] },
  { kernel: 'sgmat', shapes: [[72, 80, 100]] },
];
const F16_ONLY: MatmulKernel[] = ['tiled16', 'sgmat'];

interface Epilogue {
  act?: ActName;
  bias?: boolean;
  residual?: boolean;
}

/** x ~ U(−scale, scale), W ~ U(−0.5, 0.5); the bias and residual of the same size as the sums. */
function problem([M, N, K]: Shape, seed: number, scale = 2) {
  return {
    x: randn(M * K, seed + 1, scale),
    w: randn(N * K, seed + 2, 0.5),
    b: randn(N, seed + 3, 2),
    r: randn(M * N, seed + 4, 4),
  };
}

async function run(gpu: Gpu, kernel: MatmulKernel | undefined, [M, N, K]: Shape, wdt: 'f32' | 'f16', p: ReturnType<typeof problem>, epi: Epilogue, precision?: 'f32' | 'f16'): Promise<Float32Array> {
  const x = gpu.upload(p.x, [M, K], 'x');
  const w = wdt === 'f16' ? gpu.upload(toF16(p.w), [N, K], 'w', 'f16') : gpu.upload(p.w, [N, K], 'w');
  const opts: LinearOptions = { kernel, act: epi.act, precision };
  if (epi.bias) opts.bias = gpu.upload(p.b, [N], 'b');
  if (epi.residual) opts.residual = gpu.upload(p.r, [M, N], 'r');
  const y = linear(gpu, x, w, opts);
  const got = await gpu.readF32(y);
  gpu.release(x, w, y, opts.bias, opts.residual);
  return got;
}

function candidates([M, N, K]: Shape, p: ReturnType<typeof problem>, epi: Epilogue, roundX = true) {
  return linearF16Candidates(p.x, p.w, M, N, K, { act: epi.act, bias: epi.bias ? p.b : undefined, residual: epi.residual ? p.r : undefined, roundX });
}

async function check(kernel: MatmulKernel, shape: Shape, wdt: 'f32' | 'f16', epi: Epilogue = {}) {
  const gpu = await getGpu();
  const p = problem(shape, shape[0] * 7 + shape[2]);
  const got = await run(gpu, kernel, shape, wdt, p, epi, 'f16');
  const c = candidates(shape, p, epi);
  expect(got.length).toBe(c.length);
  expect(outsideCandidates(got, c)).toBe(0);
}

const device = await getGpu();

function variantCase(kernel: MatmulKernel, name: string, M: number, body: () => Promise<void>) {
  const refusal = kernelRefusal(device, kernel, M, 'f16');
  if (!refusal) return it(name, body);
  it(`${name} — refused: ${refusal}`, async () => {
    const gpu = await getGpu();
    const x = gpu.upload(randn(M * 4, 1), [M, 4], 'x');
    const w = gpu.upload(toF16(randn(12, 2)), [3, 4], 'w', 'f16');
    expect(() => linear(gpu, x, w, { kernel, precision: 'f16' })).toThrow(/needs subgroup matrices|needs the .* feature/);
    gpu.release(x, w);
  });
}

describe('matmul.wgsl at precision f16 (ONE_PRODUCT) vs the f16-rounding reference', () => {
  for (const { kernel, shapes } of cases) {
    for (const shape of shapes) {
      const [M, N, K] = shape;
      const variant = kernel === 'subgroup' ? `subgroup RM=${subgroupRows(M)}` : kernel === 'tiled' ? `tiled TM=${M <= 64 ? 64 : 128}` : kernel;
      for (const wdt of F16_ONLY.includes(kernel) ? (['f16'] as const) : (['f32', 'f16'] as const)) {
        variantCase(kernel, `${variant} ${wdt} weights M=${M} N=${N} K=${K}`, M, () => check(kernel, shape, wdt));
      }
    }
  }

  // every rounding point of the epilogue; the subgroup case at K > 1024 rounds after its last pass only
  const epilogues: Epilogue[] = [
    { act: 'none', bias: true, residual: true },
    { act: 'gelu', bias: true, residual: false },
    { act: 'quick_gelu', bias: false, residual: true },
    { act: 'silu', bias: true, residual: true },
  ];
  const epilogueCases: { kernel: MatmulKernel; shape: Shape; wdt: 'f32' | 'f16'; which: number[] }[] = [
    { kernel: 'tile4x4', shape: [19, 45, 36], wdt: 'f32', which: [3] },
    { kernel: 'subgroup', shape: [3, 45, 38], wdt: 'f16', which: [1] },
    { kernel: 'subgroup', shape: [19, 45, 2056], wdt: 'f32', which: [0, 3] },
    { kernel: 'gemv', shape: [8, 70, 260], wdt: 'f16', which: [2] },
    { kernel: 'tiled', shape: [70, 90, 50], wdt: 'f32', which: [3] },
    { kernel: 'tiled16', shape: [70, 90, 50], wdt: 'f16', which: [1, 2] },
  ];
  for (const { kernel, shape, wdt, which } of epilogueCases) {
    for (const e of which.map((i) => epilogues[i])) {
      variantCase(kernel, `epilogue ${kernel} ${wdt} [${shape.join(', ')}] act=${e.act} bias=${e.bias} residual=${e.residual}`, shape[0], () => check(kernel, shape, wdt, e));
    }
  }

  // more only where the sum cancels (|z| ≪ Σ|xw|: the window spans the fine f16 steps near 0)
  it('the reference allows one f16 value for most outputs (the check is near bit-exact)', () => {
    const shape: Shape = [37, 130, 257];
    const c = candidates(shape, problem(shape, 5), epilogues[3]);
    expect(c.filter((v) => v.length === 1).length / c.length).toBeGreaterThan(0.5); // measured 0.65
  });

  it('rounds to nearest, ties to even, on the bits: halfway cases, subnormals, 65504 and past it', async () => {
    const gpu = await getGpu();
    const u = 2 ** -10;
    const xs = [1 + u / 2, 1 + (3 * u) / 2, -(1 + u / 2), 1 + u / 2 + 2 ** -20, 2 ** -14 * (1 - 2 ** -12), 2 ** -24 * 0.5, 2 ** -24 * 1.5, 2 ** -25 * 1.01, 3e-6, 65504, 65519, 65520, -70000, 0.1, 1 / 3];
    const K = 4;
    const x = new Float32Array(xs.length * K);
    xs.forEach((v, i) => (x[i * K] = v)); // y[i] = x[i]·1 + 0
    const w = new Float32Array(K).fill(0);
    w[0] = 1;
    const y = await gpu.readF32(linear(gpu, gpu.upload(x, [xs.length, K], 'x'), gpu.upload(w, [1, K], 'w'), { precision: 'f16' }));
    expect(Array.from(y)).toEqual(Array.from(roundF16(Float32Array.from(xs))));
    expect(y[11]).toBe(Infinity);
    expect(y[0]).toBe(1);
  });

  // x 0.45 of an f16 step above an f16 value, the signs of column k shared by x and W: every
  // product is positive, and rounding x lowers each by about 2⁻¹¹ of it, all the same way
  function biased([M, N, K]: Shape) {
    const p = problem([M, N, K], 11, 1);
    const signs = randn(K, 14).map(Math.sign);
    const step = (h: number) => f16BitsToF32(f32ToF16Bits(h) + 1) - h;
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) {
        const h = roundF16([0.5 + Math.abs(p.x[m * K + k])])[0];
        p.x[m * K + k] = (signs[k] || 1) * (h + 0.45 * step(h));
      }
    }
    p.w = Float32Array.from(p.w, (v, i) => Math.abs(v) * (signs[i % K] || 1));
    return p;
  }

  it('can fail: on x off the f16 grid, the f32 kernels and a kernel that does not round x miss', async () => {
    const gpu = await getGpu();
    const shape: Shape = [16, 16, 512];
    const p = biased(shape);
    const c = candidates(shape, p, {});
    expect(outsideCandidates(await run(gpu, 'subgroup', shape, 'f16', p, {}, 'f16'), c)).toBe(0);
    for (const kernel of ['subgroup', 'tiled16'] as MatmulKernel[]) {
      expect(outsideCandidates(await run(gpu, kernel, shape, 'f16', p, {}, 'f32'), c), kernel).toBeGreaterThan(0.9 * c.length);
    }
    // outputs rounded to f16 but x not: the reference's own values without the x rounding
    const noRound = candidates(shape, p, {}, false).map((v) => v[0]);
    expect(outsideCandidates(noRound, c)).toBeGreaterThan(0.3 * c.length); // measured 0.49
  });

  it("the device's precision (setMatmulPrecision) is what linear() runs by default", async () => {
    const gpu = await getGpu();
    const shape: Shape = [21, 50, 64];
    const p = problem(shape, 3);
    const c = candidates(shape, p, { act: 'silu', bias: true });
    expect(matmulPrecision(gpu)).toBe('f32');
    setMatmulPrecision(gpu, 'f16');
    try {
      expect(outsideCandidates(await run(gpu, undefined, shape, 'f32', p, { act: 'silu', bias: true }), c)).toBe(0);
    } finally {
      setMatmulPrecision(gpu, 'f32');
    }
    expect(outsideCandidates(await run(gpu, undefined, shape, 'f32', p, { act: 'silu', bias: true }), c)).toBeGreaterThan(0.9 * c.length);
  });

  it('a device without shader-f16 refuses precision f16', async () => {
    const gpu = await createNodeGpu({ features: { f16: false } }); // the device is created without shader-f16
    expect(gpu.features.f16).toBe(false);
    expect(() => setMatmulPrecision(gpu, 'f16')).toThrow(/precision f16 needs the shader-f16 feature/);
    const x = gpu.upload(randn(8, 1), [2, 4], 'x');
    const w = gpu.upload(randn(12, 2), [3, 4], 'w');
    expect(() => linear(gpu, x, w, { precision: 'f16' })).toThrow(/precision f16 needs the shader-f16 feature/);
    gpu.release(x, w);
    await gpu.sync();
    gpu.destroy();
  });
});

afterAll(() => setMatmulPrecision(device, 'f32'));
