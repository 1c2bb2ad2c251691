/**
 * Top-k per row with softmax statistics, on the GPU (shaders/topk.wgsl).
 *   x [rows, V] f32 → values/ids [rows, k], stats [rows, 2] = (max, Σ exp(x − max))
 * For a vocabulary split in column blocks (lm_head parts), run once per block with its
 * `col0` and merge the small results with `mergeTopk` on the host.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';

export const MAX_K = 32;
/** WebGPU's minimum maxComputeWorkgroupStorageSize: what every device has. */
const MIN_WORKGROUP_BYTES = 16384;

/** Invocations per row: 64, halved while their lists (8·k bytes each, plus 8 for max and sum) pass MIN_WORKGROUP_BYTES — k = 32 gets 32. */
export function topkWorkgroup(k: number): number {
  let wg = 64;
  while (wg > 1 && wg * (8 * k + 8) > MIN_WORKGROUP_BYTES) wg /= 2;
  return wg;
}

export interface TopkResult {
  values: Tensor;
  ids: Tensor;
  stats: Tensor;
}

export function topk(gpu: Gpu, x: Tensor, k: number, col0 = 0): TopkResult {
  if (x.shape.length !== 2) throw new GpuError(`topk: expected [rows, V], got ${x}`);
  const [rows, V] = x.shape;
  if (!Number.isInteger(k) || k < 1 || k > Math.min(MAX_K, V)) throw new GpuError(`topk: k = ${k} must be in 1..${Math.min(MAX_K, V)}`);
  // every row's k entries and stats are written
  const values = gpu.tensor([rows, k], 'f32', `${x.name}.topk.values`, { fullyWritten: true });
  const ids = gpu.tensor([rows, k], 'u32', `${x.name}.topk.ids`, { fullyWritten: true });
  const stats = gpu.tensor([rows, 2], 'f32', `${x.name}.topk.stats`, { fullyWritten: true });
  gpu.dispatch({
    kernel: 'topk',
    pipeline: { shader: 'topk.wgsl', defines: { K: k, WG_MAX: topkWorkgroup(k) } },
    params: { values: [rows, V, col0] },
    bindings: [x, values, ids, stats],
    workgroups: gpu.grid(rows),
    shapes: `rows=${rows} V=${V} k=${k}`,
    flops: 3 * rows * V,
    bytes: 4 * rows * V,
  });
  return { values, ids, stats };
}

export interface HostTopk {
  /** [rows][k] column ids, best first. */
  ids: number[][];
  /** [rows][k] softmax probabilities over the whole row (all parts). */
  probs: number[][];
}

/** Merges per-part results (read back) into row-wise top-k with full-row softmax probabilities. */
export function mergeTopk(parts: { values: Float32Array; ids: Uint32Array; stats: Float32Array }[], rows: number, k: number): HostTopk {
  const ids: number[][] = [];
  const probs: number[][] = [];
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (const p of parts) m = Math.max(m, p.stats[2 * r]);
    let sum = 0;
    for (const p of parts) sum += p.stats[2 * r + 1] * Math.exp(p.stats[2 * r] - m);
    const cand: [number, number][] = [];
    for (const p of parts) for (let i = 0; i < k; i++) cand.push([p.values[r * k + i], p.ids[r * k + i]]);
    cand.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const best = cand.slice(0, k);
    ids.push(best.map((c) => c[1]));
    probs.push(best.map((c) => Math.exp(c[0] - m) / sum));
  }
  return { ids, probs };
}
