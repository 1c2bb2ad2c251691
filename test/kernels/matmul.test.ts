import { describe, expect, it } from 'vitest';
import { kernelRefusal, linear, pickMatmulKernel, subgroupRows, type LinearOptions, type MatmulKernel } from '../../src/ops/linear.ts';
import { CHECK_PROBLEMS, checkKernel, checkMatmulVariants, referenceWithBound } from '../../src/ops/matmul-check.ts';
import { elementwise } from '../../src/ops/elementwise.ts';
import { Gpu } from '../../src/gpu/context.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { nodeAdapter, nodeShaderLoader } from '../../src/gpu/node.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { toF16, roundF16 } from '../../src/gpu/half.ts';
import { linearRef } from '../reference/matmul.ts';
import { activation, type ActName } from '../reference/activations.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// Every variant of shaders/matmul.wgsl is forced here (`kernel`), whatever the adapter picks:
//   tile4x4        4×4 outputs per invocation, 32×32 per workgroup
//   subgroup RM=1..8 (M ≤ 8) M rounded up to a power of two rows × 32 columns per workgroup,
//                  one pass over K
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
  // M ≤ 8: RM = 1, 2, 4, 8; decode shapes: lm_head's wide N off the 32-column blocks
  // (32064 + 5), shallow K (7, 64, 100) and a deep one (4096)
  { kernel: 'subgroup', shapes: [[1, 1, 1], [5, 7, 3], [1, 33, 36], [8, 70, 130], [3, 200, 1024], [1, 33, 7], [1, 32069, 64], [2, 32069, 7], [1, 33, 4096], [2, 100, 100], [6, 33, 4096], [4, 130, 64]] },
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
    { kernel: 'subgroup', shape: [1, 45, 100], wdt: 'f32', which: [0, 3] },
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
    // tiled16 only once it passed its self-check on this device
    expect(pickMatmulKernel(gpu, 600, 'f16')).toBe('tiled');
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

  // GLU_X (`up`): down_proj's input silu(gate) · up formed in the loads, on every variant of
  // this file that decoding can pick (subgroup RM 1/4/32 with several K passes, gemv) and the
  // others; vec4 and scalar loads (K % 4), f32 and f16 weights, with the residual epilogue.
  // The reference forms silu(gate) · up in f64 and rounds it to f32, as silu_mul stores it;
  // the tolerance is the same TOL (the kernels' silu differs from f64 by a few f32 ulps).
  const gluCases: { kernel: MatmulKernel; shape: Shape; wdt: 'f32' | 'f16' }[] = [
    { kernel: 'subgroup', shape: [1, 64, 107], wdt: 'f32' },
    { kernel: 'subgroup', shape: [1, 33, 100], wdt: 'f16' },
    { kernel: 'subgroup', shape: [3, 70, 36], wdt: 'f32' },
    { kernel: 'subgroup', shape: [19, 45, 2056], wdt: 'f16' },
    { kernel: 'gemv', shape: [1, 45, 38], wdt: 'f32' },
    { kernel: 'gemv', shape: [5, 70, 260], wdt: 'f16' },
    { kernel: 'tile4x4', shape: [2, 33, 7], wdt: 'f32' },
    { kernel: 'tiled', shape: [9, 65, 100], wdt: 'f16' },
  ];
  for (const { kernel, shape, wdt } of gluCases) {
    const [M, N, K] = shape;
    variantCase(kernel, `silu(x) · up fused into the loads: ${kernel} ${wdt} M=${M} N=${N} K=${K}`, async () => {
      const gpu = await getGpu();
      const g = randn(M * K, M + 2 * K, 2);
      const u = randn(M * K, M + 3 * K);
      const w = randn(N * K, N + K, 0.5);
      const r = randn(M * N, M * N);
      const act = activation('silu');
      const x = Float32Array.from(g, (v, i) => act(v) * u[i]);
      const wt = wdt === 'f16' ? gpu.upload(toF16(w), [N, K], 'w', 'f16') : gpu.upload(w, [N, K], 'w');
      const y = await gpu.readF32(linear(gpu, gpu.upload(g, [M, K], 'gate'), wt, { kernel, up: gpu.upload(u, [M, K], 'up'), residual: gpu.upload(r, [M, N], 'r') }));
      expect(relErr(y, linearRef(x, wdt === 'f16' ? roundF16(w) : w, M, N, K, { residual: r }))).toBeLessThanOrEqual(TOL);
      // can fail: the same weights on silu(gate) alone (up ignored) are far off
      expect(relErr(y, linearRef(Float32Array.from(g, act), wdt === 'f16' ? roundF16(w) : w, M, N, K, { residual: r }))).toBeGreaterThan(1e-2);
    }, M);
  }

  it('refuses an up input not shaped as x, and on sgmat', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(new Float32Array(8), [2, 4], 'x');
    const w = gpu.upload(toF16(new Float32Array(8)), [2, 4], 'w', 'f16');
    expect(() => linear(gpu, x, w, { up: gpu.upload(new Float32Array(4), [1, 4], 'up') })).toThrow(/up .* is not f32 \[2, 4\]/);
    expect(() => linear(gpu, x, w, { kernel: 'sgmat', emulateSubgroupMatrix: { M: 8, N: 8, K: 8, subgroupSize: 32 }, up: gpu.upload(new Float32Array(8), [2, 4], 'up2') })).toThrow(/does not take the fused/);
    gpu.release(x, w);
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
  it('runs at the K of the 7B models (4096, 11008) and a ragged one, every epilogue path', () => {
    expect(CHECK_PROBLEMS.map((p) => p.shape[2])).toEqual([100, 4096, 11008]);
    for (const p of CHECK_PROBLEMS) {
      expect(p.shape[0] % 64).not.toBe(0);
      expect(p.shape[1] % 64).not.toBe(0);
    }
    expect(CHECK_PROBLEMS.some((p) => p.bias && p.residual && p.act === 'silu')).toBe(true);
    expect(new Set(CHECK_PROBLEMS.map((p) => p.shape[0] <= 64))).toEqual(new Set([true, false])); // both TILE_M
  });

  it('the bound grows like √K and covers the f32 rounding of a real sum, not an f16 one', () => {
    // one row: x·w over K equal products; the f32 sum's error is well inside, f16-rounded
    // products (f16 activations) are outside at K = 100
    const p = { shape: [1, 1, 100] as [number, number, number], bias: false, act: 'none' as const, residual: false };
    const x = randn(100, 3);
    const w = roundF16(randn(100, 4, 0.2));
    const { y, bound } = referenceWithBound(x, w, p);
    let f32 = 0;
    let f16x = 0;
    for (let k = 0; k < 100; k++) {
      f32 = Math.fround(f32 + Math.fround(x[k] * w[k]));
      f16x = Math.fround(f16x + Math.fround(roundF16([x[k]])[0] * w[k]));
    }
    expect(Math.abs(f32 - y[0])).toBeLessThan(bound[0]);
    expect(Math.abs(f16x - y[0])).toBeGreaterThan(bound[0]);
    const at = (K: number) => referenceWithBound(new Float32Array(K).fill(1), new Float32Array(K).fill(1), { ...p, shape: [1, 1, K] }).bound[0] / K;
    // √K from the accumulation term; the input term (2⁻²²·A) is linear in A, so a little less
    expect(at(10000) / at(100)).toBeGreaterThan(8);
    expect(at(10000) / at(100)).toBeLessThanOrEqual(10);
  });

  it('tiled and tiled16 pass against the f64 reference at every problem; a tighter bound fails with the figure', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    for (const kernel of ['tiled', ...(gpu.features.f16 ? ['tiled16'] : [])] as MatmulKernel[]) {
      const c = await checkKernel(gpu, kernel);
      expect(c.ok, c.reason).toBe(true);
      expect(c.worst!).toBeGreaterThan(0); // it did round: the comparison is not vacuous
      expect(c.worst!).toBeLessThanOrEqual(1);
      const strict = await checkKernel(gpu, kernel, { slack: c.worst! / 2 });
      expect(strict.ok).toBe(false);
      expect(strict.reason).toMatch(/differs from the f64 reference by \d\.\d\d× its rounding bound/);
    }
    gpu.destroy();
  }, 600_000);

  it('a result off by f16 rounding (relative 2⁻¹¹) fails', async () => {
    const gpu = await getGpu();
    const c = await checkKernel(gpu, 'tiled', {
      problems: CHECK_PROBLEMS.slice(0, 1),
      candidate: (x, w, o) => {
        const y = linear(gpu, x, w, { ...o, kernel: pickMatmulKernel(gpu, x.shape[0], 'f16') });
        const off = elementwise(gpu, 'scale', y, null, 1 + 2 ** -11);
        gpu.release(y);
        return off;
      },
    });
    expect(c.ok).toBe(false);
    expect(c.reason).toMatch(/at \[72, 80, 100\]/);
  });

  // A pipeline the device refuses (its workgroup exceeds the device's limit: an error at
  // pipeline creation) and an error no dispatch scope covers (a write past a buffer's end,
  // which would otherwise reach onuncapturederror and poison the device): the check fails
  // with the reason, the device stays alive, and prefill keeps tiled.
  it('a planted failing pipeline: the check fails, the device stays alive and falls back', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    const planted = (x: Tensor, w: Tensor): Tensor => {
      const y = gpu.tensor([x.shape[0], w.shape[0]], 'f32', 'planted');
      gpu.write(y, new Float32Array(8), y.byteSize + 1024);
      gpu.dispatch({
        kernel: 'planted',
        pipeline: { shader: 'matmul.wgsl', defines: { TILE4X4: true, VEC4: true, W_F16: true, W_BINDING: 2, BIAS: false, RESIDUAL: false, ACT: 0 }, constants: { WG_X: 4096, WG_Y: 4096 } },
        params: { values: [x.shape[0], w.shape[0], x.shape[1], 0, x.shape[1] / 4, 2] },
        bindings: [x, w, null, null, y],
        workgroups: [1, 1],
        shapes: 'planted',
      });
      return y;
    };
    const c = await checkKernel(gpu, 'tiled16', { candidate: planted });
    expect(c.ok).toBe(false);
    expect(c.reason).toMatch(/did not run at \[72, 80, 100\]: .*(validation|WGSL|workgroup)/i);
    expect(pickMatmulKernel(gpu, 600, 'f16')).toBe('tiled');
    // alive: the default pick runs and agrees with the reference, and sync raises nothing
    const [M, N, K] = [70, 50, 66];
    const x = randn(M * K, 1);
    const w = randn(N * K, 2, 0.5);
    const y = await gpu.readF32(linear(gpu, gpu.upload(x, [M, K], 'x'), gpu.upload(toF16(w), [N, K], 'w', 'f16')));
    expect(relErr(y, linearRef(x, roundF16(w), M, N, K))).toBeLessThanOrEqual(TOL);
    await gpu.sync();
    gpu.destroy();
  });

  it('GPU class: tiled16 is checked and then picked; CPU class: nothing to check', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    expect(gpu.subgroupMatrix).toBeNull();
    const warnings: string[] = [];
    const lines = await checkMatmulVariants(gpu, (l) => warnings.push(l));
    expect(warnings).toEqual([]);
    if (gpu.features.f16) {
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/shader-f16: the 'tiled16' matmul passed its self-check \(max error 0\.\d{3} of its bound\)/);
      expect(pickMatmulKernel(gpu, 600, 'f16')).toBe('tiled16');
    } else {
      expect(lines).toEqual([]);
    }
    expect(pickMatmulKernel(gpu, 600, 'f16')).not.toBe('sgmat');
    gpu.destroy();
    const cpu = await createNodeGpu({ kernels: 'cpu' });
    expect(await checkMatmulVariants(cpu, (l) => warnings.push(l))).toEqual([]);
    cpu.destroy();
  });

  // This machine's adapters have no subgroup matrices, so the kernel cannot compile here:
  // a device that claims a configuration it was not created with gets a real WGSL error
  // from Dawn, which is the failure the check exists to catch on a real adapter.
  it('sgmat that does not compile: a warning naming the reason, and prefill keeps tiled16', async () => {
    const base = await getGpu();
    const adapter = await nodeAdapter();
    const device = await adapter!.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups' as GPUFeatureName].filter((f) => adapter!.features.has(f)) as GPUFeatureName[] });
    const gpu = new Gpu(device, { ...base.features, timestamps: false }, base.adapterName, base.adapterClass, nodeShaderLoader, { kernels: 'gpu' }, { M: 16, N: 16, K: 16, subgroupSize: 32, extension: 'chromium_experimental_subgroup_matrix' });
    const warnings: string[] = [];
    const lines = await checkMatmulVariants(gpu, (l) => warnings.push(l));
    expect(lines.at(-1)).toMatch(/'sgmat' failed its self-check; not used/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^phaselens: warning: subgroup matrices f16 16×16×16 → f32 present, but the 'sgmat' matmul failed its self-check: it did not run at \[72, 80, 100\]: .*WGSL compile error in matmul_sgmat\.wgsl.*Not using it\.$/);
    expect(pickMatmulKernel(gpu, 600, 'f16')).toBe(gpu.features.f16 ? 'tiled16' : 'tiled');
    // the device still works after the failed compile
    const [M, N, K] = [70, 50, 66];
    const x = randn(M * K, 1);
    const w = randn(N * K, 2, 0.5);
    const y = await gpu.readF32(linear(gpu, gpu.upload(x, [M, K], 'x'), gpu.upload(toF16(w), [N, K], 'w', 'f16')));
    expect(relErr(y, linearRef(x, roundF16(w), M, N, K))).toBeLessThanOrEqual(TOL);
    await gpu.sync();
    gpu.destroy();
  });
});
