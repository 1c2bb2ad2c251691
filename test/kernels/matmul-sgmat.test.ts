import { describe, expect, it } from 'vitest';
import { linear, tiledTile, type LinearOptions } from '../../src/ops/linear.ts';
import { sgmatConfig, sgmatSplits, type MatrixShape } from '../../src/ops/matmul-sgmat.ts';
import { checkKernel, referenceWithBound, type CheckProblem } from '../../src/ops/matmul-check.ts';
import { fromF16, toF16 } from '../../src/gpu/half.ts';
import { getGpu, randn } from '../helpers/gpu.ts';

// shaders/matmul_sgmat.wgsl on lavapipe, which has no subgroup matrices: the kernel's
// EMULATE form, where only the four matrix primitives (load left / right, multiply-add,
// store) are plain loops and everything else — the tile configuration picked for this
// device's 32 KiB, the f16 staging with its padded stride, one or two stages, the hi/lo
// split, the edges, split K and its reduction pass, the epilogue — is the code a GPU runs.
// As NVIDIA's configuration (16×16×16, 32 lanes), which here becomes 2 × 2 subgroups ×
// 4 × 2 matrices = 128 × 64 (M ≤ 64: 1 × 4 subgroups, 64 × 128; M ≤ 32: 32 × 128, where
// ONE_PRODUCT has room for two stages).
// Shapes: M = 1, 7, 130, 257 and N = 33, 1032 divide no tile; K = 100 ends inside a step
// (25 vec4s, steps of 8), K = 4096 is a 7B model's; K = 99 takes the scalar loads. Split K
// is forced (the peak table has no lavapipe), including a split into more chunks than
// steps (empty chunks) and one that does not divide K.
//
// Tolerance: the self-check's per-output bound (src/ops/matmul-check.ts, header): f32
// accumulation in any order (λ·√K·u·Σ|x·w|, λ = 8), the split's 2⁻²² input rounding, and the
// epilogue's f32 ops; every output must be within it. ONE_PRODUCT multiplies f16(x): its
// reference takes f16-rounded x, and its output may be rounded to f16 once more (2⁻¹¹·|y|).
// A wrong index or tile misses by orders of magnitude; a lost lo half by ~20× (the header of
// matmul-check.ts).
const NVIDIA: MatrixShape = { M: 16, N: 16, K: 16, subgroupSize: 32 };

interface Case {
  shape: [number, number, number];
  splitK?: number;
  epilogue?: boolean;
  f16?: boolean;
}

/** The largest |Δ| / bound over the outputs. */
async function run(c: Case): Promise<number> {
  const gpu = await getGpu();
  const [M, N, K] = c.shape;
  const seed = M * 31 + N * 7 + K;
  const x = randn(M * K, seed);
  const wh = toF16(randn(N * K, seed + 1, 0.2));
  const b = c.epilogue ? randn(N, seed + 2) : undefined;
  const r = c.epilogue ? randn(M * N, seed + 3) : undefined;
  const xt = gpu.upload(x, [M, K], 'x');
  const wt = gpu.upload(wh, [N, K], 'w', 'f16');
  const opts: LinearOptions = { kernel: 'sgmat', emulateSubgroupMatrix: NVIDIA, splitK: c.splitK, precision: c.f16 ? 'f16' : 'f32' };
  if (b) opts.bias = gpu.upload(b, [N], 'b');
  if (r) opts.residual = gpu.upload(r, [M, N], 'r');
  if (c.epilogue) opts.act = 'silu';
  const yt = linear(gpu, xt, wt, opts);
  const got = await gpu.readF32(yt);
  gpu.release(xt, wt, yt, opts.bias, opts.residual);
  const xr = c.f16 ? fromF16(toF16(x)) : x;
  const p: CheckProblem = { shape: [M, N, K], bias: !!b, act: c.epilogue ? 'silu' : 'none', residual: !!r };
  const { y, bound } = referenceWithBound(xr, fromF16(wh), p, b, r);
  let worst = 0;
  for (let i = 0; i < y.length; i++) {
    const e = Math.abs(got[i] - y[i]) / (bound[i] + (c.f16 ? 2 ** -11 * Math.abs(y[i]) : 0));
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

const cases: Case[] = [
  // 128 × 64 tiles, one stage
  { shape: [130, 33, 100] },
  { shape: [257, 1032, 100] },
  { shape: [130, 1032, 4096] },
  { shape: [257, 33, 4096] },
  { shape: [257, 33, 4096], splitK: 3 },
  { shape: [130, 33, 100], splitK: 5 }, // 4 steps: chunks of 1 step, the last one empty
  // 32 × 64 tiles
  { shape: [1, 33, 100] },
  { shape: [7, 1032, 100] },
  { shape: [1, 1032, 4096] },
  { shape: [7, 33, 4096] },
  { shape: [7, 1032, 4096], splitK: 6 },
  // K % 4 != 0: scalar loads
  { shape: [7, 33, 99], splitK: 2 },
  // bias + silu + residual: in the kernel, and after the reduction of split K
  { shape: [130, 33, 100], epilogue: true },
  { shape: [257, 33, 4096], epilogue: true, splitK: 4 },
  // ONE_PRODUCT (`--precision f16`): one product of f16(x), two stages
  { shape: [7, 33, 100], f16: true },
  { shape: [1, 1032, 4096], f16: true, splitK: 3 },
];

describe('matmul_sgmat.wgsl, emulated subgroup matrices (NVIDIA configuration) on lavapipe', () => {
  it('the configurations these cases run: tiles, stages', async () => {
    const gpu = await getGpu();
    const at = (M: number, one: boolean) => {
      const c = sgmatConfig(NVIDIA, gpu.limits, M, one)!;
      return [c.TM, c.TN, c.defines.STAGES, c.WG];
    };
    expect(gpu.limits.maxComputeWorkgroupStorageSize).toBe(32768);
    expect(at(130, false)).toEqual([128, 64, 1, 128]);
    expect(at(60, false)).toEqual([64, 128, 1, 128]);
    expect(at(7, false)).toEqual([32, 128, 1, 128]);
    expect(at(7, true)).toEqual([32, 128, 2, 128]);
  });

  for (const c of cases) {
    const what = `${c.epilogue ? 'bias+silu+residual ' : ''}${c.f16 ? 'ONE_PRODUCT ' : ''}M=${c.shape[0]} N=${c.shape[1]} K=${c.shape[2]}${c.splitK ? ` split K ×${c.splitK}` : ''}`;
    it(what, async () => {
      expect(await run(c)).toBeLessThanOrEqual(1);
    }, 900_000);
  }

  it('a wrong result is caught: without the lo half, the split falls outside the bound', async () => {
    // the ONE_PRODUCT kernel's f32-precision output checked against the f32 bound
    const gpu = await getGpu();
    const [M, N, K] = [7, 33, 100];
    const x = randn(M * K, 5);
    const wh = toF16(randn(N * K, 6, 0.2));
    const xt = gpu.upload(x, [M, K], 'x');
    const wt = gpu.upload(wh, [N, K], 'w', 'f16');
    const yt = linear(gpu, xt, wt, { kernel: 'sgmat', emulateSubgroupMatrix: NVIDIA, precision: 'f16' });
    const got = await gpu.readF32(yt);
    gpu.release(xt, wt, yt);
    const { y, bound } = referenceWithBound(x, fromF16(wh), { shape: [M, N, K], bias: false, act: 'none', residual: false });
    expect(Math.max(...Array.from(y, (v, i) => Math.abs(got[i] - v) / bound[i]))).toBeGreaterThan(2);
  }, 900_000);
});

describe("the self-check (src/ops/matmul-check.ts) on the emulated kernel", () => {
  // its problems at K = 100, 4096, 11008; on an H100 the two long ones run split 16 ways
  // (one tile, 132 SMs), which is forced here
  for (const splitK of [1, 16]) {
    it(`passes at the K of the 7B models, split K ×${splitK}`, async () => {
      const gpu = await getGpu();
      const c = await checkKernel(gpu, 'sgmat', { candidate: (x, w, o) => linear(gpu, x, w, { ...o, kernel: 'sgmat', emulateSubgroupMatrix: NVIDIA, splitK }) });
      expect(c.reason).toBe('');
      expect(c.ok).toBe(true);
    }, 900_000);
  }
});

describe('split K (and smaller tiles): where the grid leaves compute units idle', () => {
  const nv = sgmatConfig(NVIDIA, { maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 }, 577, false)!;
  it("on NVIDIA's 48 KiB: 128 × 128 tiles of 8 subgroups", () => {
    expect([nv.TM, nv.TN, nv.WG, nv.defines.STAGES, nv.defines.SG_M, nv.defines.SG_N, nv.defines.MAT_M, nv.defines.MAT_N]).toEqual([128, 128, 256, 1, 2, 4, 4, 2]);
  });
  it("CLIP-L's projections (577 tokens, N = 1024) on an H100's 132 SMs: 40 tiles, split 4 ways", () => {
    expect(sgmatSplits(132, 577, 1024, 1024, nv)).toBe(4);
    expect(sgmatSplits(132, 577, 4096, 1024, nv)).toBe(1); // 160 tiles: enough
    expect(sgmatSplits(132, 600, 4096, 4096, nv)).toBe(1);
    expect(sgmatSplits(132, 40, 4096, 4096, nv)).toBe(5); // 32 tiles
    expect(sgmatSplits(132, 40, 80, 100, nv)).toBe(1); // 4 steps: too short to split
    expect(sgmatSplits(NaN, 577, 1024, 1024, nv)).toBe(1); // an adapter the table does not know
    expect(sgmatSplits(132, 8, 64, 11008, nv)).toBe(16); // at most 16
  });
  it("'tiled' takes 64-row tiles instead: 80 → 160 workgroups for CLIP-L's projections", () => {
    expect(tiledTile(577, 1024, 132).TILE_M).toBe(64);
    expect(tiledTile(577, 4096, 132).TILE_M).toBe(128); // 320 tiles
    expect(tiledTile(577, 1024, NaN).TILE_M).toBe(128); // an adapter the table does not know
    expect(tiledTile(60, 4096, NaN).TILE_M).toBe(64);
  });
});
