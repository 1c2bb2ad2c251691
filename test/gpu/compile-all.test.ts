/**
 * Every kernel compiles, with no error and no warning: every WGSL variant of every shader,
 * built by the real ops (so the defines are the ones their pickers produce) on a device of
 * Dawn's Null backend — which exposes every feature (shader-f16, subgroups, subgroup
 * matrices), compiles and validates like any backend, and runs nothing. A shader module's
 * text depends only on its defines (workgroup sizes are `override` constants), so covering
 * the defines covers the modules; every pipeline is created too, so workgroup and binding
 * limits are validated against the Null device's.
 *
 * What is enumerated (each op's header says why its defines take these values):
 *   matmul     every variant × f32/f16 weights × bias × residual × 4 activations × K % 4 = 0
 *              or not × precision f32/f16 (ONE_PRODUCT), at every row class (subgroup RM 1/2/4/8/32, gemv ROWS 1..8, tiled TM
 *              64/128); gemv's GEMV_T 1..64 × GEMV_C over every power of two it can take;
 *              sgmat with the configuration the picker takes from what each vendor reports;
 *              silu(x) · up in the loads (GLU_X) on every variant but sgmat
 *   attention  rows R 1..4, split, flash and decode with every tile candidate that fits a
 *              48 KiB workgroup (NVIDIA's; the largest of the supported GPUs — those past
 *              the Null device's 16 KiB as modules only), row, merge;
 *              × head dims 1, 3 (D % 4 ≠ 0), 64, 88, 128 (CLIP/Q-Former, EVA, LLaMA) ×
 *              causal × mask
 *   the rest   every define of layernorm, rmsnorm, embedding, elementwise (every op, in place
 *              or not), convert, topk (k 1..32), rope (and q, k in one), im2col, group_norm (± SiLU, both stages),
 *              codebook_argmin, nonfinite, contextualization, softmax, pair_cos_hist (2048
 *              bins), group_mass
 *              (its three stages), norm_attention (its four stages, VEC4 and f16 weights).
 */
import { describe, expect, it } from 'vitest';
import { Gpu, pickSubgroupMatrix, subgroupMatrixFeature, type SubgroupMatrix } from '../../src/gpu/context.ts';
import { nodeShaderLoader, nullAdapter } from '../../src/gpu/node.ts';
import type { KernelClass } from '../../src/gpu/adapter-class.ts';
import { kernelRefusal, linear, MATMUL_KERNELS, type Activation, type LinearOptions, type MatmulKernel } from '../../src/ops/linear.ts';
import { sgmatConfig, sgmatPipeline, type MatrixShape } from '../../src/ops/matmul-sgmat.ts';
import { PRECISIONS } from '../../src/ops/precision.ts';
import { attention, attentionRow, flashLayout, flashPipeline, tileCandidates, type AttentionVariant } from '../../src/ops/attention.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';
import { rmsNorm } from '../../src/ops/rmsnorm.ts';
import { embedding } from '../../src/ops/embedding.ts';
import { elementwise, type BinaryOp, type UnaryOp } from '../../src/ops/elementwise.ts';
import { bf16ToF32, f16ToF32 } from '../../src/ops/convert.ts';
import { MAX_K, topk } from '../../src/ops/topk.ts';
import { rope, ropeQk, ropeTable } from '../../src/ops/rope.ts';
import { im2col } from '../../src/ops/patch-embed.ts';
import { groupNorm } from '../../src/ops/group-norm.ts';
import { codebookArgmin } from '../../src/ops/codebook-argmin.ts';
import { softmax } from '../../src/ops/softmax.ts';
import { countNonFinite, nonFiniteCounts } from '../../src/ops/nonfinite.ts';
import { contextSets, contextualization } from '../../src/ops/contextualization.ts';
import { pairCosHist, pairCosHistResult } from '../../src/ops/pair-cos-hist.ts';
import { groupMass, keyGroups } from '../../src/ops/group-mass.ts';
import { headGram, normAttention } from '../../src/ops/norm-attention.ts';

/** A device of the Null backend with every feature, as GPU- or CPU-class kernels, optionally with subgroup matrices. */
async function nullGpu(kernels: KernelClass, subgroupMatrix: SubgroupMatrix | null = null): Promise<Gpu> {
  const adapter = await nullAdapter();
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: [...adapter.features] as GPUFeatureName[],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const features = { f16: true, timestamps: false, subgroups: true };
  return new Gpu(device, features, 'Dawn Null', { adapterClass: 'unknown', evidence: 'Null backend' }, nodeShaderLoader, { kernels }, subgroupMatrix);
}

/** Records `build`'s dispatches, waits, and returns the pipelines it made; throws on any compile or validation error. */
async function compileAll(gpu: Gpu, build: () => void): Promise<number> {
  const before = gpu.pipelines.created.count;
  build();
  await gpu.sync();
  expect(gpu.pipelines.warnings.join('\n')).toBe('');
  return gpu.pipelines.created.count - before;
}

const ACTS: Activation[] = ['none', 'gelu', 'quick_gelu', 'silu'];
const bools = [false, true];

/** `glu`: with silu(x) · up in the loads (GLU_X), which only the loads see: one epilogue. */
function matmuls(gpu: Gpu, kernel: MatmulKernel, rows: readonly number[], extra: LinearOptions = {}, glu = false): void {
  const N = 33;
  for (const M of rows) {
    for (const K of [3, 100]) {
      const x = gpu.tensor([M, K], 'f32', 'x');
      const up = glu ? gpu.tensor([M, K], 'f32', 'up') : undefined;
      for (const wdt of ['f32', 'f16'] as const) {
        if (kernelRefusal(gpu, kernel, M, wdt, extra.emulateSubgroupMatrix)) continue;
        const w = gpu.tensor([N, K], wdt, 'w');
        const b = gpu.tensor([N], 'f32', 'b');
        const r = gpu.tensor([M, N], 'f32', 'r');
        for (const bias of bools) for (const residual of bools) for (const act of ACTS) for (const precision of PRECISIONS) {
          if (glu && (bias || !residual || act !== 'none')) continue;
          gpu.release(linear(gpu, x, w, { ...extra, kernel, act, bias: bias ? b : undefined, residual: residual ? r : undefined, precision, up }));
        }
        gpu.release(w, b, r);
      }
      gpu.release(x, up);
    }
  }
}

/**
 * Subgroup-matrix configurations as each vendor's driver reports them through Dawn
 * (Vulkan VK_KHR_cooperative_matrix properties as listed on vulkan.gpuinfo.org; Metal's
 * simdgroup_matrix is 8×8, Metal Shading Language spec §6.7), with the largest subgroup.
 * `picked`: the configuration pickSubgroupMatrix takes (the most multiply-adds per operation).
 */
const VENDORS: { vendor: string; subgroupMaxSize: number; configs: { componentType: string; resultComponentType: string; M: number; N: number; K: number }[]; picked: [number, number, number] }[] = [
  {
    vendor: 'NVIDIA (Ampere, Ada, Hopper)',
    subgroupMaxSize: 32,
    configs: [
      { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 },
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 8, K: 16 },
      { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 32 },
    ],
    picked: [16, 16, 16],
  },
  {
    vendor: 'AMD (RDNA 3)',
    subgroupMaxSize: 64,
    configs: [
      { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 },
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
      { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 16 },
    ],
    picked: [16, 16, 16],
  },
  {
    vendor: 'Intel (Xe-HPG, Xe2)',
    subgroupMaxSize: 16,
    configs: [
      { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 16 },
      { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 16, K: 16 },
    ],
    picked: [8, 16, 16],
  },
  {
    vendor: 'Apple (M-series)',
    subgroupMaxSize: 32,
    configs: [
      { componentType: 'f16', resultComponentType: 'f16', M: 8, N: 8, K: 8 },
      { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
      { componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
    ],
    picked: [8, 8, 8],
  },
];

describe('every kernel variant compiles on Dawn (Null backend), with no error or warning', () => {
  it('matmul: every variant, dtype, epilogue and row class', async () => {
    const gpu = await nullGpu('gpu');
    const rows: Record<Exclude<MatmulKernel, 'sgmat'>, number[]> = {
      subgroup: [1, 2, 4, 8, 40],
      gemv: [1, 2, 3, 4, 5, 6, 7, 8],
      tiled: [40, 100],
      tiled16: [40, 100],
      tile4x4: [40],
    };
    const n = await compileAll(gpu, () => {
      for (const kernel of MATMUL_KERNELS) if (kernel !== 'sgmat') matmuls(gpu, kernel, rows[kernel]);
    });
    // subgroup 5 RM × 2 VEC4 × 2 dtypes × 16 epilogues × 2 precisions, gemv 8 ROWS × (GT 1 and 32 at K = 3, 100) × …
    expect(n).toBeGreaterThan(1200);
    gpu.destroy();
  });

  it('matmul with silu(x) · up formed in the loads (GLU_X): every variant but sgmat, row class, dtype, precision', async () => {
    const gpu = await nullGpu('gpu');
    const rows: Record<Exclude<MatmulKernel, 'sgmat'>, number[]> = { subgroup: [1, 2, 4, 8, 40], gemv: [1, 8], tiled: [40, 100], tiled16: [40], tile4x4: [3] };
    const n = await compileAll(gpu, () => {
      for (const kernel of MATMUL_KERNELS) if (kernel !== 'sgmat') matmuls(gpu, kernel, rows[kernel], {}, true);
    });
    // subgroup 5 RM × 2 VEC4 × 2 dtypes × 2 precisions, and the others
    expect(n).toBeGreaterThan(40);
    gpu.destroy();
  });

  it("matmul gemv: every GEMV_T (K) and GEMV_C (N) the op can pick, at every row count", async () => {
    const gpu = await nullGpu('gpu');
    const n = await compileAll(gpu, () => {
      for (let M = 1; M <= 8; M++) {
        for (const K of [4, 8, 16, 32, 64, 128, 256]) {
          const x = gpu.tensor([M, K], 'f32', 'x');
          for (let N = 1; N <= 256; N *= 2) {
            const w = gpu.tensor([N, K], 'f16', 'w');
            gpu.release(linear(gpu, x, w, { kernel: 'gemv' }));
            gpu.release(w);
          }
          gpu.release(x);
        }
      }
    });
    expect(n).toBeGreaterThan(8 * 7 * 4);
    gpu.destroy();
  });

  for (const v of VENDORS) {
    it(`matmul sgmat: the configuration picked from what ${v.vendor} reports, every row class, split K`, async () => {
      // the draft's `subgroup_matrix` is not a WGSL extension this Dawn knows yet ("expected
      // extension"), so only Dawn's name compiles here; the choice between them is tested below
      for (const extension of ['chromium_experimental_subgroup_matrix']) {
        const picked = pickSubgroupMatrix({ subgroupMatrixConfigs: v.configs, subgroupMaxSize: v.subgroupMaxSize }, extension);
        expect(picked && [picked.M, picked.N, picked.K]).toEqual(v.picked);
        expect(picked!.subgroupSize).toBe(v.subgroupMaxSize);
        // Dawn wants a subgroup-matrix kernel's workgroup a multiple of the device's largest
        // subgroup, which is the Null device's (128) here: linear() derives its tiles for
        // that; the vendors' own tiles are compiled as modules in the next test
        const nullMax = (await nullAdapter()).info.subgroupMaxSize!;
        const gpu = await nullGpu('gpu', { ...picked!, subgroupSize: nullMax });
        const n = await compileAll(gpu, () => {
          matmuls(gpu, 'sgmat', [7, 40, 100]);
          matmuls(gpu, 'sgmat', [100], { splitK: 3 });
        });
        // f16 weights only: VEC4 × 16 epilogues × 2 precisions, the row classes of this tile
        // (≤ 32, ≤ 64 rows — the Null device's 16 KiB tile has 64), the reduction's 16 × 2
        expect(n).toBeGreaterThanOrEqual(2 * 16 * 2 * 2 + 16 * 2);
        gpu.destroy();
      }
    }, 600_000);
  }

  it('matmul sgmat: every f16 → f32 configuration the vendors report, with their subgroup size, at 48, 32 and 16 KiB, real and emulated, as modules', async () => {
    const gpu = await nullGpu('gpu');
    let modules = 0;
    const n = await compileAll(gpu, () => {
      for (const v of VENDORS) {
        for (const c of v.configs.filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32')) {
          const shape: MatrixShape = { M: c.M, N: c.N, K: c.K, subgroupSize: v.subgroupMaxSize };
          for (const kib of [48, 32, 16]) {
            const limits = { maxComputeWorkgroupStorageSize: kib * 1024, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
            for (const M of [7, 40, 600]) for (const one of bools) {
              const cfg = sgmatConfig(shape, limits, M, one);
              expect(cfg, `${v.vendor} ${c.M}×${c.N}×${c.K} at ${kib} KiB`).not.toBeNull();
              expect(cfg!.bytes).toBeLessThanOrEqual(kib * 1024);
              expect(cfg!.WG % v.subgroupMaxSize).toBe(0);
              // the epilogue's defines touch only lib/matmul_store.wgsl (every combination is built above)
              for (const VEC4 of bools) for (const epilogue of bools) {
                for (const extension of ['chromium_experimental_subgroup_matrix', null]) {
                  const defines = { VEC4, W_F16: true, W_BINDING: 2, BIAS: epilogue, RESIDUAL: epilogue, ACT: epilogue ? 3 : 0, ONE_PRODUCT: one, F16: one };
                  gpu.pipelines.module(sgmatPipeline(cfg!, defines, extension));
                  modules++;
                }
              }
            }
          }
        }
      }
    });
    expect(n).toBe(0); // modules only
    expect(modules).toBe(6 * 3 * 3 * 2 * 2 * 2 * 2); // 6 configurations × 3 sizes × 3 row classes × precision × VEC4 × epilogue × real/emulated
    gpu.destroy();
  }, 600_000);

  it("matmul sgmat emulated: the pipelines linear() builds for the vendors' configurations on the Null device", async () => {
    const gpu = await nullGpu('gpu');
    const n = await compileAll(gpu, () => {
      for (const v of VENDORS) {
        for (const c of v.configs.filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32')) {
          matmuls(gpu, 'sgmat', [7, 100], { emulateSubgroupMatrix: { M: c.M, N: c.N, K: c.K, subgroupSize: v.subgroupMaxSize }, splitK: 2 });
        }
      }
    });
    expect(n).toBeGreaterThan(100);
    gpu.destroy();
  }, 600_000);

  it("subgroup matrices: the draft's feature and extension names when an adapter offers them, else Dawn's", () => {
    const offer = (...names: string[]) => subgroupMatrixFeature((f) => names.includes(f));
    expect(offer('subgroup-matrix')?.extension).toBe('subgroup_matrix');
    expect(offer('chromium-experimental-subgroup-matrix', 'subgroup-matrix')?.extension).toBe('subgroup_matrix');
    expect(offer('chromium-experimental-subgroup-matrix')?.extension).toBe('chromium_experimental_subgroup_matrix');
    expect(offer('subgroups')).toBeNull();
  });

  it('attention: every variant and tile × head dims × causal × mask; attention row; decode merge', async () => {
    const gpu = await nullGpu('gpu');
    const NVIDIA_WORKGROUP_BYTES = 48 * 1024;
    const n = await compileAll(gpu, () => {
      for (const D of [1, 3, 64, 88, 128]) {
        const Skv = 40;
        const k = gpu.tensor([Skv, 2, D], 'f32', 'k');
        const v = gpu.tensor([Skv, 2, D], 'f32', 'v');
        for (const Sq of [1, 8, 32, 40]) {
          const q = gpu.tensor([Sq, 4, D], 'f32', 'q');
          const m = gpu.tensor([Sq, Skv], 'f32', 'mask');
          for (const causal of bools) for (const withMask of bools) {
            const mask = withMask ? m : undefined;
            const runs: { variant: AttentionVariant; extra?: object }[] = [];
            if (Sq === 40) for (const R of [1, 2, 3, 4]) runs.push({ variant: 'rows', extra: { rowsPerInvocation: R } });
            if (Sq === 1) runs.push({ variant: 'split' });
            const flash = Sq === 40 ? 'flash' : 'decode';
            for (const tile of tileCandidates(flash, Sq)) {
              const l = flashLayout(D, tile, flash === 'decode');
              if (!l.ok || l.bytes > NVIDIA_WORKGROUP_BYTES) continue;
              // past the Null device's workgroup memory (16 KiB): the module alone
              if (l.bytes <= gpu.limits.maxComputeWorkgroupStorageSize) runs.push({ variant: flash, extra: { tile } });
              else gpu.pipelines.module(flashPipeline(D, causal, withMask, tile, flash === 'decode'));
            }
            for (const r of runs) gpu.release(attention(gpu, q, k, v, { causal, mask, variant: r.variant, ...r.extra }));
            if (Sq === 40) gpu.release(attentionRow(gpu, q, k, { causal, mask }));
          }
          gpu.release(q, m);
        }
        gpu.release(k, v);
      }
    });
    expect(n).toBeGreaterThan(200);
    gpu.destroy();
  });

  it('norms, embedding, elementwise, convert, topk, rope, im2col, group norm, codebook argmin, nonfinite, contextualization, norm attention, softmax', async () => {
    const gpu = await nullGpu('gpu');
    const n = await compileAll(gpu, () => {
      const x = gpu.tensor([5, 64], 'f32', 'x');
      for (const wdt of ['f32', 'f16'] as const) {
        const w = gpu.tensor([64], wdt, 'w');
        gpu.release(rmsNorm(gpu, x, w, 1e-5));
        gpu.release(layerNorm(gpu, x, w, null, 1e-5));
        for (const bdt of ['f32', 'f16'] as const) {
          const b = gpu.tensor([64], bdt, 'b');
          gpu.release(layerNorm(gpu, x, w, b, 1e-5), b);
        }
        const table = gpu.tensor([10, 64], wdt, 'table');
        const ids = gpu.tensor([5], 'i32', 'ids');
        gpu.release(embedding(gpu, ids, table), table, ids);
        gpu.release(w);
      }
      for (const op of ['gelu', 'quick_gelu', 'silu', 'scale'] as UnaryOp[]) {
        for (const inPlace of bools) {
          const a = gpu.tensor([5, 64], 'f32', 'a');
          const y = elementwise(gpu, op, a, null, 0.5, { inPlace });
          gpu.release(a, y);
        }
      }
      for (const op of ['silu_mul', 'add', 'mul'] as BinaryOp[]) {
        for (const inPlace of bools) {
          const a = gpu.tensor([5, 64], 'f32', 'a');
          const y = elementwise(gpu, op, a, x, 0, { inPlace });
          gpu.release(a, y);
        }
      }
      const h = gpu.tensor([5, 64], 'f16', 'h');
      gpu.release(f16ToF32(gpu, h), h);
      const words = gpu.tensor([160], 'u32', 'bf16');
      gpu.release(bf16ToF32(gpu, words, [5, 64]), words);
      for (let k = 1; k <= MAX_K; k++) {
        const t = topk(gpu, x, k);
        gpu.release(t.values, t.ids, t.stats);
      }
      const rt = ropeTable(gpu, { headDim: 16, maxPos: 8 });
      for (const inPlace of bools) {
        const a = gpu.tensor([5, 4, 16], 'f32', 'a');
        const y = rope(gpu, a, rt, { inPlace });
        gpu.release(a, y);
      }
      const [q, k] = [gpu.tensor([5, 4, 16], 'f32', 'q'), gpu.tensor([5, 2, 16], 'f32', 'k')];
      ropeQk(gpu, q, k, rt);
      gpu.release(q, k);
      const pixels = gpu.tensor([3, 28, 28], 'f32', 'pixels');
      gpu.release(im2col(gpu, pixels, 14), pixels);
      const act = gpu.tensor([6, 5, 64], 'f32', 'act');
      for (const wdt of ['f32', 'f16'] as const) {
        const w = gpu.tensor([64], wdt, 'w');
        for (const silu of bools) gpu.release(groupNorm(gpu, act, 32, w, w, 1e-6, { silu }));
        const cb = gpu.tensor([40, 64], wdt, 'codebook');
        const ids = gpu.tensor([40], 'i32', 'ids');
        gpu.release(codebookArgmin(gpu, act, cb), codebookArgmin(gpu, act, cb, { map: ids }), ids, cb, w);
      }
      gpu.release(act, softmax(gpu, x, { scale: 0.5 }));
      const counts = nonFiniteCounts(gpu, 2);
      countNonFinite(gpu, x, counts, 1);
      gpu.release(counts);
      const sets = contextSets(gpu, { start: 0, end: 2 }, [3, 4]);
      gpu.release(contextualization(gpu, x, sets));
      const hist = pairCosHistResult(gpu, 1);
      pairCosHist(gpu, x, sets, hist);
      const alpha = gpu.tensor([2, 5], 'f32', 'alpha');
      const keys = keyGroups(gpu, 5, [[0], [3, 4]]);
      const mass = gpu.tensor([1, 2], 'f32', 'mass');
      groupMass(gpu, alpha, keys, mass);
      gpu.release(sets.idx, hist, alpha, keys, mass);
      for (const Dh of [3, 64]) {
        for (const wdt of ['f32', 'f16'] as const) {
          const wO = gpu.tensor([32, 4 * Dh], wdt, 'wO');
          const alpha = gpu.tensor([4, 6], 'f32', 'alpha');
          const vv = gpu.tensor([6, 2, Dh], 'f32', 'v');
          const r = normAttention(gpu, alpha, vv, wO);
          gpu.release(r.head, r.layer, alpha, vv);
          gpu.release(headGram(gpu, wO, 4), wO);
        }
      }
      gpu.release(x);
    });
    expect(n).toBeGreaterThan(60);
    gpu.destroy();
  });

  it('the CPU-class picks on the same device compile too', async () => {
    const gpu = await nullGpu('cpu');
    const n = await compileAll(gpu, () => {
      for (const kernel of ['subgroup', 'tile4x4'] as MatmulKernel[]) matmuls(gpu, kernel, [4, 40]);
      const q = gpu.tensor([70, 4, 64], 'f32', 'q');
      const k = gpu.tensor([70, 4, 64], 'f32', 'k');
      gpu.release(attention(gpu, q, k, k, { causal: true }), q, k);
    });
    expect(n).toBeGreaterThan(100);
    gpu.destroy();
  });

  it('a kernel with a compile warning fails the check (the check can fail)', async () => {
    const gpu = await nullGpu('gpu');
    // the deprecated subgroupMatrixLoad spelling (no layout template argument): a warning, not an error
    const picked = pickSubgroupMatrix({ subgroupMatrixConfigs: VENDORS[0].configs, subgroupMaxSize: 32 }, 'chromium_experimental_subgroup_matrix')!;
    const code = `enable f16;\nenable ${picked.extension};\nvar<workgroup> a: array<f16, 256>;\n@compute @workgroup_size(${(await nullAdapter()).info.subgroupMaxSize}) fn main() {\n  let m = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&a, 0u, false, 16u);\n  _ = m;\n}\n`;
    const shader = 'planted-warning.wgsl';
    const planted = new Gpu(gpu.device, gpu.features, 'Dawn Null', gpu.adapterClass, (p) => (p === shader ? code : nodeShaderLoader(p)), { kernels: 'gpu' });
    await expect(compileAll(planted, () => {
      const y = planted.tensor([1], 'f32', 'y');
      planted.dispatch({ kernel: 'planted', pipeline: { shader }, bindings: [], workgroups: [1], shapes: '-' });
      planted.release(y);
    })).rejects.toThrow(/to be ''/);
    expect(planted.pipelines.warnings).toEqual([expect.stringMatching(/^planted-warning\.wgsl:5:11: use of deprecated builtin/)]);
    gpu.destroy();
  });
});
