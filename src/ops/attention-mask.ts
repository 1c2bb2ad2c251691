/**
 * Additive attention masks built on the host (f32 [rows, kvLen]: 0 keeps, −inf blocks),
 * for the attention kernels' `mask` input.
 *
 * `slidingWindowMask`: Mistral's sliding window (HF masking_utils `sliding_window_overlay`,
 * kv > q − window, on top of causality): the query at absolute position q = pos0 + row sees
 * keys q − window + 1 … q.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';

export function slidingWindowMaskData(rows: number, pos0: number, kvLen: number, window: number): Float32Array {
  if (!Number.isInteger(window) || window < 1) throw new GpuError(`sliding window must be a positive integer, got ${window}`);
  const m = new Float32Array(rows * kvLen);
  for (let r = 0; r < rows; r++) {
    const q = pos0 + r;
    for (let j = 0; j < kvLen && j <= q - window; j++) m[r * kvLen + j] = -Infinity;
  }
  return m;
}

/** The window's mask [rows, kvLen] on the GPU (the caller releases it). */
export function slidingWindowMask(gpu: Gpu, rows: number, pos0: number, kvLen: number, window: number): Tensor {
  return gpu.upload(slidingWindowMaskData(rows, pos0, kvLen, window), [rows, kvLen], `sliding_window_mask(${window})`);
}
