import { describe, expect, it } from 'vitest';
import { linear, pickMatmulKernel } from '../../src/ops/linear.ts';
import { CHECK_PROBLEMS, checkKernel, checkMatmulVariants, referenceWithBound } from '../../src/ops/matmul-check.ts';
import type { MatrixShape } from '../../src/ops/matmul-sgmat.ts';
import { Gpu } from '../../src/gpu/context.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { createNodeGpu, nodeAdapter, nodeShaderLoader } from '../../src/gpu/node.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { linearRef } from '../reference/matmul.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// The self-check of the ONE_PRODUCT forms (`--precision f16`): src/ops/matmul-check.ts's
// header derives the bound (f32 accumulation λ·√K·u·Σ|x·w| on f16-rounded x, plus the f16
// rounding of the linear's, the activation's and the add's outputs). On lavapipe 'tiled16'
// runs for real and 'sgmat' as its EMULATE form (NVIDIA's 16×16×16, 32 lanes), at the
// check's real problems (K = 100, 4096, 11008), split K forced for sgmat as an H100 would.
// The failures are real too: a result off by f16 accumulation, a pipeline the device
// refuses plus a write past a buffer's end, and an sgmat that does not compile.
const NVIDIA: MatrixShape = { M: 16, N: 16, K: 16, subgroupSize: 32 };

/** What torch fp16 computes for one output with no epilogue: f16 x·w summed in `acc`, rounded to f16. */
function fp16Dot(x: Float32Array, w: Float32Array, acc: (s: number, t: number) => number): number {
  let s = 0;
  for (let k = 0; k < x.length; k++) s = acc(s, Math.fround(x[k] * w[k]));
  return roundF16([s])[0];
}

describe('the f16 (ONE_PRODUCT) form of the bound', () => {
  const p = { shape: [1, 1, 0] as [number, number, number], bias: false, act: 'none' as const, residual: false };
  it('admits f32 accumulation with an f16 output; refuses f16 accumulation at K = 100 and 11008', () => {
    for (const K of [100, 11008]) {
      const x = roundF16(randn(K, K));
      const w = roundF16(randn(K, K + 1, 0.2));
      const { y, bound } = referenceWithBound(x, w, { ...p, shape: [1, 1, K] }, undefined, undefined, 'f16');
      const f32acc = fp16Dot(x, w, (s, t) => Math.fround(s + t));
      const f16acc = fp16Dot(x, w, (s, t) => roundF16([s + t])[0]);
      expect(Math.abs(f32acc - y[0])).toBeLessThanOrEqual(bound[0]);
      expect(Math.abs(f16acc - y[0])).toBeGreaterThan(2 * bound[0]);
    }
  });
  it('is wider than the f32 form by the output rounding, not by the input term', () => {
    const K = 4096;
    const x = roundF16(randn(K, 3));
    const w = roundF16(randn(K, 4, 0.2));
    const q = { ...p, shape: [1, 1, K] as [number, number, number] };
    const f32 = referenceWithBound(x, w, q).bound[0];
    const f16 = referenceWithBound(x, w, q, undefined, undefined, 'f16');
    // at least the output's own rounding (2⁻¹¹·|y| twice: the linear's and, with no residual, the add's)
    expect(f16.bound[0]).toBeGreaterThan(2 * 2 ** -11 * Math.abs(f16.y[0]));
    expect(f16.bound[0]).toBeGreaterThan(f32);
  });
});

describe('the f16 form checked on lavapipe', () => {
  it('tiled16 passes at K = 100/4096/11008; a tighter bound fails with the figure; the f32 check refuses its output', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    expect(gpu.features.f16).toBe(true); // lavapipe has shader-f16 (README)
    const c = await checkKernel(gpu, 'tiled16', { precision: 'f16' });
    expect(c.reason).toBe('');
    expect(c.ok).toBe(true);
    expect(c.worst!).toBeGreaterThan(0.1); // the f16 output rounding is visible: the bound is not loose by orders
    const strict = await checkKernel(gpu, 'tiled16', { precision: 'f16', slack: c.worst! / 2 });
    expect(strict.ok).toBe(false);
    expect(strict.reason).toMatch(/differs from the f64 reference by \d\.\d\d× its rounding bound/);
    // the one-product output held to the f32-exact bound: the two forms are told apart
    const asF32 = await checkKernel(gpu, 'tiled16', { problems: CHECK_PROBLEMS.slice(0, 1), candidate: (x, w, o) => linear(gpu, x, w, { ...o, kernel: 'tiled16', precision: 'f16' }) });
    expect(asF32.ok).toBe(false);
    gpu.destroy();
  }, 600_000);

  for (const splitK of [1, 16]) {
    it(`the emulated sgmat passes, split K ×${splitK}`, async () => {
      const gpu = await getGpu();
      const c = await checkKernel(gpu, 'sgmat', { precision: 'f16', candidate: (x, w, o) => linear(gpu, x, w, { ...o, kernel: 'sgmat', emulateSubgroupMatrix: NVIDIA, splitK }) });
      expect(c.reason).toBe('');
      expect(c.ok).toBe(true);
    }, 900_000);
  }

  it('checkMatmulVariants at f16: tiled16 passes and is picked at f16; the f32 pick waits for its own check', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    const warnings: string[] = [];
    const lines = await checkMatmulVariants(gpu, (l) => warnings.push(l), 'f16');
    expect(warnings).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^shader-f16: the 'tiled16' matmul \(precision f16\) passed its self-check \(max error 0\.\d{3} of its bound\)/);
    expect(pickMatmulKernel(gpu, 600, 'f16', 'f16')).toBe('tiled16');
    expect(pickMatmulKernel(gpu, 600, 'f16', 'f32')).toBe('tiled');
    gpu.destroy();
  }, 600_000);

  // as in matmul.test.ts for the f32 form: a pipeline the device refuses (workgroup past its
  // limit) and a write past a buffer's end that no dispatch scope covers
  it('a planted failing pipeline at f16: the check fails, the device stays alive, the f16 pick falls back', async () => {
    const gpu = await createNodeGpu({ kernels: 'gpu' });
    const planted = (x: Tensor, w: Tensor): Tensor => {
      const y = gpu.tensor([x.shape[0], w.shape[0]], 'f32', 'planted');
      gpu.write(y, new Float32Array(8), y.byteSize + 1024);
      gpu.dispatch({
        kernel: 'planted',
        pipeline: { shader: 'matmul.wgsl', defines: { TILE4X4: true, ONE_PRODUCT: true, F16: true, VEC4: true, W_F16: true, W_BINDING: 2, BIAS: false, RESIDUAL: false, ACT: 0 }, constants: { WG_X: 4096, WG_Y: 4096 } },
        params: { values: [x.shape[0], w.shape[0], x.shape[1], 0, x.shape[1] / 4, 2] },
        bindings: [x, w, null, null, y],
        workgroups: [1, 1],
        shapes: 'planted',
      });
      return y;
    };
    const c = await checkKernel(gpu, 'tiled16', { precision: 'f16', candidate: planted });
    expect(c.ok).toBe(false);
    expect(c.reason).toMatch(/did not run at \[72, 80, 100\]: .*(validation|WGSL|workgroup)/i);
    expect(pickMatmulKernel(gpu, 600, 'f16', 'f16')).toBe('tiled');
    // alive: the f16 pick runs and agrees with the reference on f16-rounded x
    const [M, N, K] = [70, 50, 66];
    const x = randn(M * K, 1);
    const w = randn(N * K, 2, 0.5);
    const y = await gpu.readF32(linear(gpu, gpu.upload(x, [M, K], 'x'), gpu.upload(toF16(w), [N, K], 'w', 'f16'), { precision: 'f16' }));
    expect(relErr(y, linearRef(roundF16(x), roundF16(w), M, N, K))).toBeLessThanOrEqual(2 ** -10);
    await gpu.sync();
    gpu.destroy();
  }, 600_000);

  // a device claiming NVIDIA's configuration, which lavapipe cannot compile: the f16 form's
  // check fails with a one-line warning, and prefill at f16 keeps tiled16 (its form passed)
  it("sgmat's f16 form that does not compile: one warning, and the f16 pick keeps tiled16", async () => {
    const base = await getGpu();
    const adapter = await nodeAdapter();
    const device = await adapter!.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups' as GPUFeatureName] });
    const gpu = new Gpu(device, { ...base.features, timestamps: false }, base.adapterName, base.adapterClass, nodeShaderLoader, { kernels: 'gpu' }, { M: 16, N: 16, K: 16, subgroupSize: 32, extension: 'chromium_experimental_subgroup_matrix' });
    const warnings: string[] = [];
    const lines = await checkMatmulVariants(gpu, (l) => warnings.push(l), 'f16');
    expect(lines[0]).toMatch(/'tiled16' matmul \(precision f16\) passed/);
    expect(lines.at(-1)).toMatch(/'sgmat' \(precision f16\) failed its self-check; not used/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^phaselens: warning: subgroup matrices f16 16×16×16 → f32 present, but the 'sgmat' matmul \(precision f16\) failed its self-check: it did not run at \[72, 80, 100\]: .*Not using it\.$/);
    expect(warnings[0]).not.toMatch(/\n/);
    expect(pickMatmulKernel(gpu, 600, 'f16', 'f16')).toBe('tiled16');
    const [M, N, K] = [70, 50, 66];
    const x = randn(M * K, 1);
    const w = randn(N * K, 2, 0.5);
    const y = await gpu.readF32(linear(gpu, gpu.upload(x, [M, K], 'x'), gpu.upload(toF16(w), [N, K], 'w', 'f16'), { precision: 'f16' }));
    expect(relErr(y, linearRef(roundF16(x), roundF16(w), M, N, K))).toBeLessThanOrEqual(2 ** -10);
    await gpu.sync();
    gpu.destroy();
  }, 600_000);
});
