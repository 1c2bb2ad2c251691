/**
 * Modality separation (the narrow-gate study, arXiv 2412.06646): the distribution of
 * |cos(h_i, h_j)| over every image row i × text row j of one hidden state, as a histogram
 * of fixed bins on [0, 1], built on the GPU by streaming tiles of the pair matrix
 * (shaders/pair_cos_hist.wgsl) — the m × n matrix is never stored, on the GPU or the host.
 *
 *   h [rows, d] f32 (a hidden state; [1, rows, d] too)
 *   sets  the two row sets (ops/contextualization.ts `contextSets`: image, then text)
 *   hist  u32 [R, bins]: this call adds the counts of its pairs into row `row`
 *
 * Bin b holds |cos| ∈ [b / bins, (b + 1) / bins) (the last bin includes 1). Pairs with a
 * zero row have no cosine and are not counted, so a row sums to m·n minus those.
 * Quantiles are read off the cumulative histogram (`histQuantile`); their resolution is
 * the bin width 1 / bins. Cost: 2·m·n·d FLOPs, (m + n)·d·(m + n)/TILE reads of h.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { isCpuAdapter, requireF32, rowsOf } from './common.ts';
import { inverseNorms, type ContextSets } from './contextualization.ts';

/**
 * Default bins: resolution 1/2048 ≈ 4.9e-4 of |cos|. The local histogram lives in
 * workgroup memory, and 2048 bins + the tiles (10 KiB) fit WebGPU's default 16 KiB;
 * more bins need a device that grants more (lavapipe 32 KiB).
 */
export const COS_BINS = 2048;
/** Pairs per workgroup side (shaders/pair_cos_hist.wgsl). */
const TILE = 16;

/** Workgroup memory the kernel needs for `bins` (the local histogram and two tiles). */
export function pairCosHistBytes(bins: number): number {
  return 4 * (bins + 2 * TILE * TILE);
}

/** A zeroed histogram for `rows` calls. */
export function pairCosHistResult(gpu: Gpu, rows: number, bins = COS_BINS, name = 'pair_cos_hist'): Tensor {
  return gpu.tensor([rows, bins], 'u32', name);
}

/** Adds the |cos| counts of every image × text pair of `h` into row `row` of `hist` [R, bins] u32. */
export function pairCosHist(gpu: Gpu, h: Tensor, sets: ContextSets, hist: Tensor, row = 0): void {
  requireF32('pairCosHist', 'h', h);
  const { rows, D: d } = rowsOf('pairCosHist', h);
  if (sets.rows > rows) throw new GpuError(`pairCosHist: the sets index row ${sets.rows - 1} but ${h} has ${rows} rows`);
  if (hist.dtype !== 'u32' || hist.shape.length !== 2) throw new GpuError(`pairCosHist: hist ${hist} must be u32 [rows, bins]`);
  const [R, bins] = hist.shape;
  if (!(Number.isInteger(row) && row >= 0 && row < R)) throw new GpuError(`pairCosHist: row ${row} is outside 0..${R - 1} of ${hist}`);
  const need = pairCosHistBytes(bins);
  if (need > gpu.limits.maxComputeWorkgroupStorageSize) throw new GpuError(`pairCosHist: ${bins} bins need ${need} bytes of workgroup memory; this device has ${gpu.limits.maxComputeWorkgroupStorageSize}`);
  const { m, n } = sets;
  if (m === 0 || n === 0) return;
  const inv = inverseNorms(gpu, h, sets);
  const blocks = Math.ceil(m / TILE) * Math.ceil(n / TILE);
  // each workgroup flushes its local histogram once: enough workgroups to fill the device, few enough that the flushes stay small next to the pairs
  const groups = Math.min(blocks, isCpuAdapter(gpu) ? 8 : 512);
  gpu.dispatch({
    kernel: 'pair_cos_hist',
    pipeline: { shader: 'pair_cos_hist.wgsl', defines: { TILE, BINS: bins } },
    params: { values: [d, m, n, row * bins] },
    bindings: [h, sets.idx, inv, hist],
    workgroups: gpu.grid(groups),
    shapes: `d=${d} m=${m} n=${n} bins=${bins}`,
    flops: 2 * m * n * d,
    bytes: 4 * ((m + n) * d * Math.ceil(Math.max(m, n) / TILE) + bins * groups),
  });
  gpu.release(inv);
}

/** Median and quartiles of a histogram, and how they were read. */
export interface HistQuantiles {
  q1: number;
  median: number;
  q3: number;
  /** Pairs counted. */
  n: number;
}

/**
 * The p-quantile of the values a histogram of `counts` over [0, 1] counts: the bin where
 * the cumulative count first reaches p·N, and linear interpolation inside it (the values
 * taken as spread evenly over the bin), so the error is at most one bin width. NaN when
 * the histogram is empty.
 */
export function histQuantile(counts: ArrayLike<number>, p: number): number {
  const bins = counts.length;
  let total = 0;
  for (let b = 0; b < bins; b++) total += counts[b];
  if (total === 0) return NaN;
  const target = p * total;
  let cum = 0;
  for (let b = 0; b < bins; b++) {
    const c = counts[b];
    if (c > 0 && cum + c >= target) return (b + Math.min(1, Math.max(0, (target - cum) / c))) / bins;
    cum += c;
  }
  return 1;
}

export function histQuantiles(counts: ArrayLike<number>): HistQuantiles {
  let n = 0;
  for (let b = 0; b < counts.length; b++) n += counts[b];
  return { q1: histQuantile(counts, 0.25), median: histQuantile(counts, 0.5), q3: histQuantile(counts, 0.75), n };
}
