/**
 * The 'sgmat' matmul (shaders/matmul_sgmat.wgsl, whose header describes the kernel): its
 * tile configuration from the adapter's subgroup-matrix shape and the device's limits, the
 * split of K where the grid would leave compute units idle, and the dispatches (the kernel,
 * then shaders/matmul_splitk.wgsl when K is split).
 *
 * Configuration (`sgmatConfig`), for a matrix of SGM_M × SGM_N (× SGM_K) and subgroups of
 * SG lanes:
 *   - a subgroup owns 64·SG outputs: 64 accumulator floats per lane, what a GPU keeps in
 *     registers beside the fragments and the prefetched step (NVIDIA 16×16, 32 lanes:
 *     64 × 32 as 4 × 2 matrices; AMD, 64 lanes: 64 × 64 as 4 × 4; Apple 8×8, 32 lanes:
 *     64 × 32 as 8 × 4; a 16-lane Intel subgroup with 8 × 16 matrices: 64 × 16 as 8 × 1);
 *   - 256 invocations per workgroup (fewer where the device allows fewer), as 2 rows × the
 *     rest of subgroups: a 128 × 128 tile on all four (M ≤ 64: one row of subgroups, 64 × 128;
 *     M ≤ 32: half-height blocks, 32 × 128);
 *   - TILE_K = 32; two stages of staged tiles when the workgroup memory holds them
 *     (ONE_PRODUCT on NVIDIA's 48 KiB: 40 KiB + 8 KiB of epilogue slots), else one (the
 *     split's hi/lo tiles: 30 KiB + 8); where even one does not fit (the WebGPU minimum of
 *     16 KiB) the tile shrinks, columns first.
 *
 * Split K (`sgmatSplits`): a grid of ⌈M/TM⌉·⌈N/TN⌉ workgroups smaller than the GPU's units
 * (SMs, CUs; src/gpu/peaks.ts) leaves some idle — CLIP-L's N = 1024 projections at 577
 * tokens are 5 × 8 = 40 tiles on an H100's 132 SMs. Then K is split into
 * ⌈units / workgroups⌉ chunks of whole steps (at most 16, each at least 8 steps = 256 of K),
 * each workgroup writes its raw partial sums, and a second pass adds the splits and applies
 * the epilogue. An adapter the peak table does not know gets no split.
 */
import type { Gpu } from '../gpu/context.ts';
import { adapterPeak } from '../gpu/peaks.ts';
import type { PipelineKey } from '../gpu/pipelines.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { Defines } from '../gpu/wgsl.ts';

/** A subgroup-matrix configuration: result SGM_M × SGM_N, inner SGM_K, f16 → f32, and the subgroup size. */
export interface MatrixShape {
  M: number;
  N: number;
  K: number;
  subgroupSize: number;
}

export interface SgmatConfig {
  /** The shader's tile defines (see its header). */
  defines: {
    SGM_M: number; SGM_N: number; SGM_K: number; SG_SIZE: number; SG_M: number; SG_N: number; MAT_M: number; MAT_N: number;
    TILE_K: number; STAGES: number; K_STEPS: number; X_LOADS: number; W_LOADS: number;
  };
  /** Rows and columns of y per workgroup, invocations per workgroup, workgroup memory (bytes). */
  TM: number;
  TN: number;
  WG: number;
  bytes: number;
}

const TILE_K = 32;
const PAD = 8; // halves past TILE_K in a staged row
/** Accumulator floats per lane. */
const ACC_PER_LANE = 64;
const WG_TARGET = 256;
const TILE_TARGET = 128 * 128;
/** Split K: at most this many chunks, each at least this many steps. */
const MAX_SPLITS = 16;
const MIN_STEPS_PER_SPLIT = 8;

/** Workgroup memory of a configuration: its stages of x (hi and lo, or one) and W tiles, and the epilogue slots. */
function bytesOf(TM: number, TN: number, stages: number, subgroups: number, shape: MatrixShape, oneProduct: boolean): number {
  return stages * ((oneProduct ? 1 : 2) * TM + TN) * (TILE_K + PAD) * 2 + subgroups * shape.M * shape.N * 4;
}

/** The tiles for `shape` on a device with these limits and M rows of x, or null when no workgroup fits. */
export function sgmatConfig(
  shape: MatrixShape,
  limits: Pick<GPUSupportedLimits, 'maxComputeWorkgroupStorageSize' | 'maxComputeInvocationsPerWorkgroup' | 'maxComputeWorkgroupSizeX'>,
  M: number,
  oneProduct: boolean,
): SgmatConfig | null {
  const sg = shape.subgroupSize;
  if (TILE_K % shape.K !== 0) return null;
  const maxWg = Math.min(WG_TARGET, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const area = ACC_PER_LANE * sg; // outputs per subgroup
  let subgroups = Math.min(Math.floor(maxWg / sg), Math.max(1, Math.floor(TILE_TARGET / area)));
  if (subgroups < 1) return null;
  let MAT_N = Math.max(1, Math.floor(area / 64 / shape.N));
  let MAT_M = Math.max(1, Math.floor(area / (MAT_N * shape.N) / shape.M));
  if (M <= (MAT_M * shape.M) / 2 && MAT_M > 1) MAT_M = Math.floor(MAT_M / 2); // few rows (short prompts, the Q-Former's 32 queries): half-height blocks
  let SG_N = Math.max(1, Math.floor(subgroups / 2));
  let SG_M = M > MAT_M * shape.M ? Math.max(1, Math.floor(subgroups / SG_N)) : 1;
  for (;;) {
    const TM = SG_M * MAT_M * shape.M;
    const TN = SG_N * MAT_N * shape.N;
    subgroups = SG_M * SG_N;
    const stages = [2, 1].find((s) => bytesOf(TM, TN, s, subgroups, shape, oneProduct) <= limits.maxComputeWorkgroupStorageSize);
    if (stages) {
      const WG = subgroups * sg;
      return {
        defines: {
          SGM_M: shape.M, SGM_N: shape.N, SGM_K: shape.K, SG_SIZE: sg, SG_M, SG_N, MAT_M, MAT_N, TILE_K, STAGES: stages,
          K_STEPS: TILE_K / shape.K, X_LOADS: Math.ceil((TM * TILE_K) / 4 / WG), W_LOADS: Math.ceil((TN * TILE_K) / 4 / WG),
        },
        TM, TN, WG, bytes: bytesOf(TM, TN, stages, subgroups, shape, oneProduct),
      };
    }
    if (SG_N > 1) SG_N /= 2;
    else if (SG_M > 1) SG_M /= 2;
    else if (MAT_N > 1) MAT_N /= 2;
    else if (MAT_M > 1) MAT_M /= 2;
    else return null;
    SG_N = Math.floor(SG_N);
    SG_M = Math.floor(SG_M);
    MAT_N = Math.floor(MAT_N);
    MAT_M = Math.floor(MAT_M);
  }
}

/** How many chunks of K the grid is split into on a GPU of `units` compute units (header). */
export function sgmatSplits(units: number | undefined, M: number, N: number, K: number, cfg: SgmatConfig): number {
  if (!units || !Number.isFinite(units)) return 1;
  const groups = Math.ceil(M / cfg.TM) * Math.ceil(N / cfg.TN);
  if (groups >= units) return 1;
  const steps = Math.ceil(Math.ceil(K / 4) / (TILE_K / 4));
  return Math.max(1, Math.min(Math.ceil(units / groups), Math.floor(steps / MIN_STEPS_PER_SPLIT), MAX_SPLITS));
}

/** The kernel's pipeline: `emulate` runs the subgroup-matrix primitives as plain loops (shader header). */
export function sgmatPipeline(cfg: SgmatConfig, defines: Defines, extension: string | null): PipelineKey {
  return { shader: 'matmul_sgmat.wgsl', defines: { ...defines, ...cfg.defines, EMULATE: extension === null, SGM_EXT: extension ?? '' } };
}

export interface SgmatRun {
  x: Tensor;
  w: Tensor;
  y: Tensor;
  bias?: Tensor;
  residual?: Tensor;
  M: number;
  N: number;
  K: number;
  /** matmul.wgsl's epilogue and operand defines (VEC4, W_F16, BIAS, RESIDUAL, ACT, ONE_PRODUCT, …). */
  defines: Defines;
  /** The subgroup-matrix shape, and the extension (null: emulated). */
  shape: MatrixShape;
  extension: string | null;
  /** Chunks of K (default: `sgmatSplits` for this adapter). */
  splits?: number;
  /** Suffix of the profile's kernel names. */
  tag: string;
}

/** Records the 'sgmat' dispatches for y = x·Wᵀ (+ epilogue); the caller has checked `sgmatConfig` is not null. */
export function sgmatLinear(gpu: Gpu, r: SgmatRun): void {
  const { M, N, K } = r;
  const one = Boolean(r.defines.ONE_PRODUCT);
  const cfg = sgmatConfig(r.shape, gpu.limits, M, one)!;
  const splits = r.splits ?? sgmatSplits(adapterPeak(gpu.adapterName)?.units, M, N, K, cfg);
  const K4 = Math.ceil(K / 4);
  const grid: [number, number, number] = [Math.ceil(N / cfg.TN), Math.ceil(M / cfg.TM), splits];
  const name = `matmul.sgmat${r.extension === null ? '-emulated' : ''}`;
  const part = splits > 1 ? gpu.tensor([splits, M, N], 'f32', `${r.y.name}.splits`, { fullyWritten: true }) : r.y;
  gpu.dispatch({
    kernel: `${name}.f16${r.tag}`,
    pipeline: sgmatPipeline(cfg, r.defines, r.extension),
    params: { values: [M, N, K, 0, K4, splits > 1 ? 0 : 2] },
    // bias and residual bound for the epilogue of one split (the pipeline is the same for any)
    bindings: [r.x, r.w, r.bias ?? null, r.residual ?? null, part],
    workgroups: grid,
    shapes: `M=${M} N=${N} K=${K} splits=${splits}`,
    flops: 2 * M * N * K,
    // x and W read once per tile column / row, y (or the partial sums) written once
    bytes: 4 * M * K * grid[0] + 2 * N * K * grid[1] + 4 * M * N * splits,
    tensorCores: r.extension !== null,
  });
  if (splits === 1) return;
  gpu.dispatch({
    kernel: `matmul.splitk${r.tag}`,
    pipeline: { shader: 'matmul_splitk.wgsl', defines: { BIAS: r.defines.BIAS, RESIDUAL: r.defines.RESIDUAL, ACT: r.defines.ACT, ONE_PRODUCT: one } },
    params: { values: [M, N, splits, 2] },
    bindings: [part, null, r.bias ?? null, r.residual ?? null, r.y],
    workgroups: gpu.grid(Math.ceil((M * N) / 256)),
    shapes: `M=${M} N=${N} splits=${splits}`,
    flops: M * N * splits,
    bytes: 4 * M * N * (splits + 1 + (r.residual ? 1 : 0)),
  });
  gpu.release(part);
}
