/**
 * y = act(x Wᵀ + b) + residual — HF `nn.Linear` with an optional fused epilogue.
 *   x [..., K] f32, W [N, K] f32 or f16 (HF layout [out, in]), b [N], residual [..., N]
 * Kernel: shaders/matmul.wgsl, five variants (its header says how they differ):
 *   'subgroup' — CPU-class kernels (lavapipe, SwiftShader; src/gpu/adapter-class.ts) with `subgroups`;
 *                RM = 32 rows per workgroup; for M ≤ 8, M rounded up to a power of two;
 *   'gemv'     — GPU-class kernels, M ≤ 8 (decoding);
 *   'sgmat'    — GPU-class kernels, M > 8, f16 weights, on adapters with subgroup matrices
 *                once the variant has passed its self-check (src/ops/matmul-check.ts);
 *                its own kernel, shaders/matmul_sgmat.wgsl (src/ops/matmul-sgmat.ts: tiles, split K);
 *   'tiled'    — GPU-class kernels, M > 8 (prefill), when the workgroup memory fits;
 *                'tiled16' is the same with the W tile in f16 (`shader-f16`, f16 weights), once
 *                it has passed the same self-check;
 *   'tile4x4'  — CPU-class adapters without subgroups, GPUs with too little workgroup memory.
 * At precision f16 (src/ops/precision.ts) every variant runs its ONE_PRODUCT form: f16
 * operands, f32 accumulation, f16 outputs.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { adapterPeak } from '../gpu/peaks.ts';
import { isCpuAdapter } from './common.ts';
import { sgmatConfig, sgmatLinear, type MatrixShape } from './matmul-sgmat.ts';
import { matmulPrecision, type Precision } from './precision.ts';

export type Activation = 'none' | 'gelu' | 'quick_gelu' | 'silu';
const ACT: Record<Activation, number> = { none: 0, gelu: 1, quick_gelu: 2, silu: 3 };

export type MatmulKernel = 'subgroup' | 'tile4x4' | 'gemv' | 'tiled' | 'tiled16' | 'sgmat';
export const MATMUL_KERNELS: readonly MatmulKernel[] = ['subgroup', 'tile4x4', 'gemv', 'tiled', 'tiled16', 'sgmat'];

export interface LinearOptions {
  bias?: Tensor;
  act?: Activation;
  residual?: Tensor;
  /** Name of the output tensor (default `${x.name}@${w.name}`). */
  name?: string;
  /** Kernel variant (default: `pickMatmulKernel`); for tests and benchmarks. */
  kernel?: MatmulKernel;
  /** 'sgmat': chunks of K (default: `sgmatSplits`); for tests and the self-check. */
  splitK?: number;
  /**
   * 'sgmat' on an adapter without subgroup matrices, for tests: the kernel with its matrix
   * primitives emulated by plain loops (shaders/matmul_sgmat.wgsl), as this configuration's.
   */
  emulateSubgroupMatrix?: MatrixShape;
  /** Precision (default: the device's, `matmulPrecision`); for tests and the self-check. */
  precision?: Precision;
  /**
   * LLaMA's MLP activation fused into the loads (shaders/lib/matmul_load.wgsl, GLU_X): x is
   * gate_proj's output and the product's input is silu(x) · up, elementwise (`up` shaped as x).
   * For decoding, where the op loads each element of x a few times only; not 'sgmat'.
   */
  up?: Tensor;
}

/** tile4x4: 8×8 invocations per workgroup, 4×4 outputs each. */
const TILE_WG = 8;
/** subgroup: invocations per workgroup (4 columns each); 8 = one lavapipe subgroup, the fastest there. */
const SG_WG = 8;

/** gemv: at most this many rows (M ≤ 8 is decoding). */
export const GEMV_MAX_ROWS = 8;
/** gemv: invocations per column along K, at most (two NVIDIA warps, one AMD wave64). */
const GEMV_T = 64;
/** gemv workgroup size: the WebGPU minimum of maxComputeInvocationsPerWorkgroup; its partial sums take ≤ 8·256·4 = 8 KiB of the 16 KiB minimum workgroup memory. */
const GEMV_WG = 256;

/**
 * tiled: rows × columns of y per workgroup and k per staged step (shaders/matmul.wgsl).
 * (TM/8)·(TN/8) invocations fetch TM·TK/4 and TN·TK/4 vec4s per step, so TN and TM must
 * divide 16·TK. TM = 64 for M ≤ 64, and where 128-row tiles would leave some of the GPU's
 * `units` (SMs, CUs: src/gpu/peaks.ts) without a workgroup — CLIP-L's N = 1024 projections
 * at 577 tokens: 5 × 16 = 80 tiles on an H100's 132 SMs, 160 with 64 rows.
 */
export function tiledTile(M: number, N = 0, units = NaN): { TILE_M: number; TILE_N: number; TILE_K: number } {
  const TILE_N = 64;
  const small = M <= 64 || Math.ceil(M / 128) * Math.ceil(N / TILE_N) < units;
  return { TILE_M: small ? 64 : 128, TILE_N, TILE_K: 16 };
}

/** Whether the 'tiled' variant's workgroup (memory and invocations) fits this device. */
export function tiledFits(gpu: Gpu, M: number): boolean {
  const { TILE_M, TILE_N, TILE_K } = tiledTile(M);
  const l = gpu.limits;
  const invocations = (TILE_M / 8) * (TILE_N / 8);
  return (TILE_M + TILE_N) * TILE_K * 4 <= l.maxComputeWorkgroupStorageSize
    && invocations <= l.maxComputeInvocationsPerWorkgroup && TILE_N / 8 <= l.maxComputeWorkgroupSizeX && TILE_M / 8 <= l.maxComputeWorkgroupSizeY;
}

/**
 * Per device, the variants that passed their self-check (src/ops/matmul-check.ts), per
 * precision (the f32-exact and the ONE_PRODUCT forms are checked apart): 'tiled16' and
 * 'sgmat' are picked only then.
 */
const checked = new WeakMap<Gpu, Set<string>>();

/** Called by the self-check once `kernel`'s form at `precision` reproduced the f64 reference on this device. */
export function markChecked(gpu: Gpu, kernel: MatmulKernel, precision: Precision = 'f32'): void {
  const s = checked.get(gpu) ?? new Set<string>();
  s.add(`${kernel} ${precision}`);
  checked.set(gpu, s);
}

function passed(gpu: Gpu, kernel: MatmulKernel, precision: Precision): boolean {
  return checked.get(gpu)?.has(`${kernel} ${precision}`) ?? false;
}

/**
 * The variant for M rows of x. CPU class: software adapters run a subgroup as the lanes
 * of one SIMD register, which is what 'subgroup' is shaped for (see shaders/matmul.wgsl);
 * barriers and workgroup memory are slow there. GPU class: 'gemv' for M ≤ 8, where the
 * op streams W once; 'tiled' otherwise ('tiled16' and 'sgmat' for f16 weights once they passed
 * their self-check on this device) — on a GPU 'subgroup's 128 accumulators and 32
 * staged x vectors per invocation would exhaust the registers.
 */
export function pickMatmulKernel(gpu: Gpu, M: number, wdtype: 'f32' | 'f16' = 'f32', precision = matmulPrecision(gpu)): MatmulKernel {
  if (isCpuAdapter(gpu)) return gpu.features.subgroups ? 'subgroup' : 'tile4x4';
  if (M <= GEMV_MAX_ROWS) return 'gemv';
  if (wdtype === 'f16' && passed(gpu, 'sgmat', precision)) return 'sgmat';
  if (!tiledFits(gpu, M)) return 'tile4x4';
  return wdtype === 'f16' && passed(gpu, 'tiled16', precision) ? 'tiled16' : 'tiled';
}

/** The adapter's subgroup-matrix shape, as 'sgmat' takes it. */
export function adapterMatrixShape(gpu: Gpu): MatrixShape | null {
  const s = gpu.subgroupMatrix;
  return s && { M: s.M, N: s.N, K: s.K, subgroupSize: s.subgroupSize };
}

/** Why `kernel` cannot run here for these weights and rows (`emulate`: 'sgmat' emulated, as this shape), or null when it can. */
export function kernelRefusal(gpu: Gpu, kernel: MatmulKernel, M: number, wdtype: 'f32' | 'f16', emulate?: MatrixShape): string | null {
  if (kernel === 'subgroup' && !gpu.features.subgroups) return `the 'subgroup' kernel needs the subgroups feature, which this device lacks`;
  if (kernel === 'gemv' && M > GEMV_MAX_ROWS) return `the 'gemv' kernel takes at most ${GEMV_MAX_ROWS} rows, got ${M}`;
  if ((kernel === 'tiled' || kernel === 'tiled16') && !tiledFits(gpu, M)) return `the '${kernel}' kernel's workgroup does not fit this device's limits`;
  if ((kernel === 'tiled16' || kernel === 'sgmat') && wdtype !== 'f16') return `the '${kernel}' kernel takes f16 weights`;
  if (kernel === 'tiled16' && !gpu.features.f16) return `the 'tiled16' kernel needs the shader-f16 feature, which this device lacks`;
  if (kernel === 'sgmat' && emulate && !gpu.features.f16) return `the emulated 'sgmat' kernel needs the shader-f16 feature, which this device lacks`;
  if (kernel === 'sgmat' && !emulate && !gpu.subgroupMatrix) return `the 'sgmat' kernel needs subgroup matrices (subgroup-matrix or chromium-experimental-subgroup-matrix with an f16 → f32 configuration), which this device lacks`;
  const shape = kernel === 'sgmat' && (emulate ?? adapterMatrixShape(gpu));
  if (shape && !sgmatConfig(shape, gpu.limits, M, false)) return `no 'sgmat' workgroup for ${shape.M}×${shape.N}×${shape.K} matrices fits this device's limits`;
  return null;
}

/**
 * Rows of y per 'subgroup' workgroup: 32, or for M ≤ 8 (decoding) M rounded up to a power of
 * two, so that every workgroup streams W once and no padding rows are multiplied (lm_head at
 * M = 1 is a stream over the whole vocabulary: 4 rows there took twice the time of 1).
 */
export function subgroupRows(M: number): number {
  return M <= 8 ? 2 ** Math.ceil(Math.log2(M)) : 32;
}

/**
 * K per pass of the 'subgroup' kernel with 32 rows: a workgroup's slices of x and W
 * (32 rows each × K_PASS floats = 2 × 128 KiB) then stay in a core's L2 while the
 * workgroups of a column block reuse the W slice. Longer K runs as several passes that add
 * into y (the epilogue runs on the last); at K = 4096 that took CPU time per GFLOP down
 * ~1.7× on this machine. Decoding (4 rows) streams W once anyway and runs in one pass.
 */
const K_PASS = 1024;

export function linear(gpu: Gpu, x: Tensor, w: Tensor, opts: LinearOptions = {}): Tensor {
  const K = x.shape[x.shape.length - 1];
  const M = K === 0 ? 0 : x.numel / K;
  if (w.shape.length !== 2 || w.shape[1] !== K) throw new GpuError(`linear: ${x} · ${w}ᵀ: inner sizes differ (expected W [N, ${K}])`);
  const N = w.shape[0];
  if (x.dtype !== 'f32') throw new GpuError(`linear: activations must be f32, got ${x}`);
  if (w.dtype !== 'f32' && w.dtype !== 'f16') throw new GpuError(`linear: weights must be f32 or f16, got ${w}`);
  if (K === 0) throw new GpuError(`linear: ${x} has no input features`);
  if (opts.bias && opts.bias.numel !== N) throw new GpuError(`linear: bias ${opts.bias} does not have ${N} elements`);
  if (opts.residual && opts.residual.numel !== M * N) throw new GpuError(`linear: residual ${opts.residual} is not [${M}, ${N}]`);
  if (opts.up && (opts.up.numel !== M * K || opts.up.dtype !== 'f32')) throw new GpuError(`linear: up ${opts.up} is not f32 [${M}, ${K}] as x is`);
  const kernel = opts.kernel ?? pickMatmulKernel(gpu, M, w.dtype, opts.precision);
  const refusal = kernelRefusal(gpu, kernel, M, w.dtype, opts.emulateSubgroupMatrix);
  if (opts.up && kernel === 'sgmat') throw new GpuError(`linear: the 'sgmat' kernel does not take the fused silu(x) · up input`);
  if (refusal) throw new GpuError(`linear: ${refusal}`);
  const one = (opts.precision ?? matmulPrecision(gpu)) === 'f16';
  if (one && !gpu.features.f16) throw new GpuError('linear: precision f16 needs the shader-f16 feature, which this device lacks');
  const outShape = [...x.shape.slice(0, -1), N];
  // every variant stores every in-range output on its first pass over K
  const y = gpu.tensor(outShape, 'f32', opts.name ?? `${x.name}@${w.name}`, { fullyWritten: true });
  if (M === 0) return y; // no rows: nothing to dispatch
  const wf16 = w.dtype === 'f16';
  const defines = {
    ONE_PRODUCT: one,
    F16: one,
    VEC4: K % 4 === 0,
    W_F16: wf16,
    W_BINDING: 2,
    BIAS: !!opts.bias,
    RESIDUAL: !!opts.residual,
    ACT: ACT[opts.act ?? 'none'],
    GLU_X: !!opts.up,
  };
  // the profile's kernel names: `.p16` marks precision f16
  const tag = one ? '.p16' : '';
  const common = {
    bindings: [x, w, opts.bias ?? null, opts.residual ?? null, y, opts.up ?? null],
    shapes: `M=${M} N=${N} K=${K}`,
  };
  const K4 = Math.ceil(K / 4);
  // FLOPs and bytes moved by a pass over k in [4·k0, 4·k1)
  const cost = (k0: number, k1: number) => {
    const k = Math.min(K, 4 * k1) - 4 * k0;
    return { flops: 2 * M * N * k, bytes: (4 * M * (opts.up ? 2 : 1) + (wf16 ? 2 : 4) * N) * k + 4 * M * N * (k0 > 0 ? 2 : 1) };
  };
  if (kernel === 'subgroup') {
    const RM = subgroupRows(M);
    const step = RM === 32 ? K_PASS / 4 : K4;
    for (let k0 = 0; k0 < K4; k0 += step) {
      const k1 = Math.min(K4, k0 + step);
      const flags = (k0 > 0 ? 1 : 0) | (k1 === K4 ? 2 : 0);
      gpu.dispatch({
        kernel: `matmul.sg.${w.dtype}${tag}`,
        pipeline: { shader: 'matmul.wgsl', defines: { ...defines, SG: true, RM }, constants: { WG: SG_WG } },
        params: { values: [M, N, K, k0, k1, flags] },
        workgroups: [Math.ceil(M / RM), Math.ceil(N / (4 * SG_WG))],
        ...cost(k0, k1),
        ...common,
      });
    }
  } else if (kernel === 'gemv') {
    // GT invocations per column, fewer when K is short so that each has k to sum
    let GT = GEMV_T;
    while (GT > 1 && GT / 2 >= K4) GT /= 2;
    const GC = Math.min(GEMV_WG / GT, 2 ** Math.ceil(Math.log2(N)));
    gpu.dispatch({
      kernel: `matmul.gemv.${w.dtype}${tag}`,
      pipeline: { shader: 'matmul.wgsl', defines: { ...defines, GEMV: true, ROWS: M, GEMV_T: GT, GEMV_C: GC } },
      params: { values: [M, N, K, 0, K4, 2] },
      workgroups: gpu.grid(Math.ceil(N / GC)),
      ...cost(0, K4),
      ...common,
    });
  } else if (kernel === 'tiled' || kernel === 'tiled16') {
    const tile = tiledTile(M, N, adapterPeak(gpu.adapterName)?.units);
    gpu.dispatch({
      kernel: `matmul.${kernel}.${w.dtype}${tag}`,
      pipeline: { shader: 'matmul.wgsl', defines: { ...defines, TILED: true, F16: one || kernel === 'tiled16', ...tile } },
      params: { values: [M, N, K, 0, K4, 2] },
      workgroups: [Math.ceil(N / tile.TILE_N), Math.ceil(M / tile.TILE_M)],
      ...cost(0, K4),
      ...common,
    });
  } else if (kernel === 'sgmat') {
    const emulate = opts.emulateSubgroupMatrix;
    sgmatLinear(gpu, {
      x, w, y, bias: opts.bias, residual: opts.residual, M, N, K, defines, tag, splits: opts.splitK,
      shape: emulate ?? adapterMatrixShape(gpu)!,
      extension: emulate ? null : gpu.subgroupMatrix!.extension,
    });
  } else {
    gpu.dispatch({
      kernel: `matmul.${w.dtype}${tag}`,
      pipeline: { shader: 'matmul.wgsl', defines: { ...defines, TILE4X4: true }, constants: { WG_X: TILE_WG, WG_Y: TILE_WG } },
      params: { values: [M, N, K, 0, K4, 2] },
      workgroups: [Math.ceil(N / (4 * TILE_WG)), Math.ceil(M / (4 * TILE_WG))],
      ...cost(0, K4),
      ...common,
    });
  }
  return y;
}
