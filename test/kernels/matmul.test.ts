import { describe, expect, it } from 'vitest';
import { kernelRefusal, linear, pickMatmulKernel, subgroupRows, type LinearOptions, type MatmulKernel } from '../../src/ops/linear.ts';
import { checkSubgroupMatrix, compareKernels } from '../../src/ops/matmul-check.ts';
import { Gpu } from '../../src/gpu/context.ts';
import { nodeAdapter, nodeShaderLoader } from '../../src/gpu/node.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { toF16, roundF16 } from '../../src/gpu/half.ts';
import { linearRef } from '../reference/matmul.ts';
import type { ActName } from '../reference/activations.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// Every variant of shaders/matmul.wgsl is forced here (`kernel`), whatever the adapter picks:
//   tile4x4        4×4 outputs per invocation, 32×32 per workgroup
//   subgroup RM=4  (M ≤ 8)  4 rows × 32 columns per workgroup, one pass over K
//   subgroup RM=32 (M > 8)  32 rows × 32 columns per workgroup, K in passes of 1024
//   gemv           (M ≤ 8)  GC columns per workgroup, GT ≤ 64 invocations per column along K
//   tiled TM=64    (M ≤ 64) 64 × 64 of y per workgroup, K staged 16 at a time
//   tiled TM=128   (M > 64) 128 × 64
//   tiled16        tiled with the W tile in f16 workgroup memory (f16 weights, shader-f16)
//   sgmat          subgroup matrices: no adapter here has them, so its cases check the
//                  refusal, and the self-check's fallback runs on a real compile failure
// Shapes include M, N that are not multiples of the tiles, K % 4 != 0 (scalar loads with a
// zero-filled last step), K % 4 == 0 (vec4 loads), single rows/columns, and K > 1024 for the
// multi-pass path (a pass that is not a multiple of the 8-lane x staging, a short last pass).
// gemv runs every M in 1..8, K shorter than its 64 invocations per column and K not a
// multiple of 4·64; tiled runs K that is not a multiple of its 16-wide steps.
//
// Tolerance: relErr (max |diff| / max |ref|) ≤ 1e-5 for every case. The f16 cases compare
// against a reference built from the same f16-rounded weights, so they differ from it only
// by f32 summation order, exactly like the f32 cases.
const TOL = 1e-5;

type Shape = [number, number, number];
const cases: { kernel: MatmulKernel; shapes: Shape[] }[] = [
  { kernel: 'tile4x4', shapes: [[1, 1, 1], [5, 7, 3], [33, 65, 20], [37, 130, 257], [3, 200, 1024]] },
  // M ≤ 8: RM = 4
  { kernel: 'subgroup', shapes: [[1, 1, 1], [5, 7, 3], [1, 33, 36], [8, 70, 130], [3, 200, 1024]] },
  // M > 8: RM = 32
  { kernel: 'subgroup', shapes: [[9, 5, 7], [33, 65, 20], [37, 130, 257], [64, 96, 128], [40, 70, 1100], [19, 45, 1030], [35, 33, 2084]] },
  { kernel: 'gemv', shapes: [[1, 1, 1], [2, 7, 3], [3, 33, 36], [4, 70, 130], [5, 9, 1030], [6, 200, 257], [7, 65, 512], [8, 130, 2084], [1, 300, 4]] },
  { kernel: 'tiled', shapes: [[9, 5, 7], [33, 65, 20], [64, 64, 16], [37, 130, 257], [65, 70, 100], [130, 129, 36], [200, 64, 1030], [600, 66, 64]] },
  { kernel: 'tiled16', shapes: [[9, 5, 7], [33, 65, 20], [37, 130, 257], [130, 129, 36], [200, 64, 1030]] },
  { kernel: 'sgmat', shapes: [[72, 80, 100]] },
];
/** Variants that take f16 weights only. */
const F16_ONLY: MatmulKernel[] = ['tiled16', 'sgmat'];

async function check(kernel: MatmulKernel, [M, N, K]: Shape, wdt: 'f32' | 'f16', epi: { act?: ActName; bias?: boolean; residual?: boolean } = {}) {
  const gpu = await getGpu();
  const x = randn(M * K, M * 7 + K);
  const w = randn(N * K, N * 13 + K, 0.5);
  const b = randn(N, N + 3);
  const r = randn(M * N, M + N);
  const xt = gpu.upload(x, [M, K], 'x');
  const wt = wdt === 'f16' ? gpu.upload(toF16(w), [N, K], 'w', 'f16') : gpu.upload(w, [N, K], 'w');
  const opts: LinearOptions = { kernel, act: epi.act };
  if (epi.bias) opts.bias = gpu.upload(b, [N], 'b');
  if (epi.residual) opts.residual = gpu.upload(r, [M, N], 'r');
  const y = await gpu.readF32(linear(gpu, xt, wt, opts));
  const want = linearRef(x, wdt === 'f16' ? roundF16(w) : w, M, N, K, {
    act: epi.act,
    bias: epi.bias ? b : undefined,
    residual: epi.residual ? r : undefined,
  });
  expect(y.length).toBe(M * N);
  expect(relErr(y, want)).toBeLessThanOrEqual(TOL);
}

const device = await getGpu();

/**
 * A case of a variant the device cannot run (subgroup without the feature, tiled16 without
 * shader-f16, sgmat without subgroup matrices) checks the refusal instead, and says so in
 * its name.
 */
function variantCase(kernel: MatmulKernel, name: string, body: () => Promise<void>, M = 16) {
  const refusal = kernelRefusal(device, kernel, M, 'f16');
  if (!refusal) return it(name, body);
  it(`${name} — refused: ${refusal}`, async () => {
    const gpu = await getGpu();
    const x = gpu.upload(randn(M * 4, 1), [M, 4], 'x');
    const w = gpu.upload(toF16(randn(12, 2)), [3, 4], 'w', 'f16');
    expect(() => linear(gpu, x, w, { kernel })).toThrow(/needs the .* feature|needs subgroup matrices/);
    gpu.release(x, w);
  });
}

describe('matmul.wgsl (linear)', () => {
  for (const { kernel, shapes } of cases) {
    for (const shape of shapes) {
      const [M, N, K] = shape;
      const variant = kernel === 'subgroup' ? `subgroup RM=${subgroupRows(M)}` : kernel === 'tiled' ? `tiled TM=${M <= 64 ? 64 : 128}` : kernel;
      for (const wdt of F16_ONLY.includes(kernel) ? (['f16'] as const) : (['f32', 'f16'] as const)) {
        variantCase(kernel, `${variant} ${wdt} weights M=${M} N=${N} K=${K}`, async () => {
          await check(kernel, shape, wdt);
        }, M);
      }
    }
  }

  // The fused epilogue, on every variant; on RM=32 with K > 1024 so it runs after several
  // passes have accumulated into y (bias/act/residual must be applied exactly once).
  const epilogues: { act: ActName; bias: boolean; residual: boolean }[] = [
    { act: 'none', bias: true, residual: false },
    { act: 'gelu', bias: true, residual: false },
    { act: 'quick_gelu', bias: false, residual: true },
    { act: 'silu', bias: true, residual: true },
  ];
  const epilogueCases: { kernel: MatmulKernel; shape: Shape; wdt: 'f32' | 'f16'; which: number[] }[] = [
    { kernel: 'tile4x4', shape: [19, 45, 36], wdt: 'f32', which: [1, 3] },
    { kernel: 'subgroup', shape: [3, 45, 38], wdt: 'f16', which: [1, 3] },
    { kernel: 'subgroup', shape: [19, 45, 2056], wdt: 'f32', which: [0, 1, 2, 3] },
    { kernel: 'gemv', shape: [1, 45, 38], wdt: 'f32', which: [0, 2] },
    { kernel: 'gemv', shape: [8, 70, 260], wdt: 'f16', which: [1, 3] },
    { kernel: 'tiled', shape: [19, 45, 36], wdt: 'f16', which: [0, 2] },
    { kernel: 'tiled', shape: [70, 90, 50], wdt: 'f32', which: [1, 3] },
    { kernel: 'tiled16', shape: [70, 90, 50], wdt: 'f16', which: [0, 1, 2, 3] },
  ];
  for (const { kernel, shape, wdt, which } of epilogueCases) {
    for (const e of which.map((i) => epilogues[i])) {
      variantCase(kernel, `epilogue ${kernel} ${wdt} [${shape.join(', ')}] act=${e.act} bias=${e.bias} residual=${e.residual}`, async () => {
        await check(kernel, shape, wdt, e);
      }, shape[0]);
    }
  }

  it('f16-only variants refuse f32 weights', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(randn(64, 1), [16, 4], 'x');
    const w = gpu.upload(randn(12, 2), [3, 4], 'w');
    for (const kernel of F16_ONLY) expect(() => linear(gpu, x, w, { kernel })).toThrow(new RegExp(`'${kernel}' kernel takes f16 weights`));
    gpu.release(x, w);
  });

  it('picks a kernel the device supports, and the same result with either', async () => {
    const gpu = await getGpu();
    const picked = pickMatmulKernel(gpu, 21);
    if (picked === 'subgroup') expect(gpu.features.subgroups).toBe(true);
    await check(picked, [21, 50, 64], 'f32', { act: 'silu', bias: true });
  });

  it('GPU-class kernels (forced on this adapter): gemv for M ≤ 8, tiled above, and linear() uses them', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    expect(pickMatmulKernel(gpu, 1)).toBe('gemv');
    expect(pickMatmulKernel(gpu, 8)).toBe('gemv');
    expect(pickMatmulKernel(gpu, 9)).toBe('tiled');
    expect(pickMatmulKernel(gpu, 600)).toBe('tiled');
    expect(pickMatmulKernel(gpu, 600, 'f16')).toBe(gpu.features.f16 ? 'tiled16' : 'tiled');
    const cpu = await getGpu();
    expect(pickMatmulKernel(cpu, 1)).toBe(cpu.features.subgroups ? 'subgroup' : 'tile4x4');
    // the default pick on the GPU-class device, against the reference
    for (const [M, N, K] of [[3, 50, 66], [70, 50, 66]]) {
      const x = randn(M * K, 5 + M);
      const w = randn(N * K, 6 + N, 0.5);
      const b = randn(N, 7);
      const y = await gpu.readF32(linear(gpu, gpu.upload(x, [M, K], 'x'), gpu.upload(toF16(w), [N, K], 'w', 'f16'), { bias: gpu.upload(b, [N], 'b'), act: 'gelu' }));
      expect(relErr(y, linearRef(x, roundF16(w), M, N, K, { bias: b, act: 'gelu' }))).toBeLessThanOrEqual(TOL);
    }
    await gpu.sync();
    gpu.destroy();
  });

  it('refuses gemv past 8 rows', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(new Float32Array(9 * 4), [9, 4], 'x');
    const w = gpu.upload(new Float32Array(8), [2, 4], 'w');
    expect(() => linear(gpu, x, w, { kernel: 'gemv' })).toThrow(/at most 8 rows/);
    gpu.release(x, w);
  });

  it('refuses mismatched inner sizes and non-f32 activations', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(new Float32Array(6), [2, 3], 'x');
    const w = gpu.upload(new Float32Array(8), [2, 4], 'w');
    expect(() => linear(gpu, x, w)).toThrow(/inner sizes differ/);
    const xh = gpu.upload(new Uint16Array(8), [2, 4], 'xh', 'f16');
    expect(() => linear(gpu, xh, w)).toThrow(/activations must be f32/);
    gpu.release(x, w, xh);
  });
});

describe('the self-check of a matmul variant (src/ops/matmul-check.ts)', () => {
  it('two variants that agree pass; a bound below their rounding difference fails with the figure', async () => {
    const gpu = await getGpu();
    const good = await compareKernels(gpu, 'tiled', 'tile4x4');
    expect(good.ok).toBe(true);
    expect(good.relErr!).toBeLessThanOrEqual(1e-5);
    // the two sum in different orders, so they differ by rounding (~1e-7) but not by 0
    expect(good.relErr!).toBeGreaterThan(0);
    const strict = await compareKernels(gpu, 'tiled', 'tile4x4', { tolerance: good.relErr! / 2 });
    expect(strict.ok).toBe(false);
    expect(strict.reason).toMatch(/differs from 'tile4x4' by \d\.\d\de-\d+/);
  });

  it('a device without subgroup matrices has nothing to check, and never picks sgmat', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    expect(gpu.subgroupMatrix).toBeNull();
    const warnings: string[] = [];
    expect(await checkSubgroupMatrix(gpu, (l) => warnings.push(l))).toBeNull();
    expect(warnings).toEqual([]);
    expect(pickMatmulKernel(gpu, 600, 'f16')).not.toBe('sgmat');
    gpu.destroy();
  });

  // This machine's adapters have no subgroup matrices, so the kernel cannot compile here:
  // a device that claims a configuration it was not created with gets a real WGSL error
  // from Dawn, which is the failure the check exists to catch on a real adapter.
  it('sgmat that does not compile: a warning naming the reason, and prefill keeps tiled', async () => {
    const base = await getGpu();
    const adapter = await nodeAdapter();
    const device = await adapter!.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups' as GPUFeatureName].filter((f) => adapter!.features.has(f)) as GPUFeatureName[] });
    const gpu = new Gpu(device, { ...base.features, timestamps: false }, base.adapterName, base.adapterClass, nodeShaderLoader, { kernels: 'gpu' }, { size: 16, subgroupSize: 32 });
    const warnings: string[] = [];
    const line = await checkSubgroupMatrix(gpu, (l) => warnings.push(l));
    expect(line).toMatch(/failed its self-check; using 'tiled'/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/'sgmat' matmul failed its self-check: it did not run: WGSL compile error in matmul\.wgsl/);
    expect(pickMatmulKernel(gpu, 600, 'f16')).toBe(gpu.features.f16 ? 'tiled16' : 'tiled');
    // the device still works after the failed compile
    await check('tiled', [70, 50, 66], 'f16');
    gpu.destroy();
  });
});
