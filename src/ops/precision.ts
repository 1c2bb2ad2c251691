/**
 * The precision a device's matmuls run at (`--precision`):
 *   'f32' — the default: every matmul variant computes f32 x times f32-or-f16 W in f32 to
 *           about f32's accuracy ('sgmat' through its split of x into two f16 products);
 *   'f16' — HF transformers' fp16 (`model.half()`), the seed paper's setting: x and W are
 *           rounded to f16, one f16 product per k with f32 accumulation, and the output is
 *           rounded to f16 after the bias, the activation and the residual add, as torch
 *           rounds each fp16 op (shaders/matmul.wgsl, ONE_PRODUCT). Needs `shader-f16`.
 * Every linear() on the device follows it, so the model's projections, lm_head, the towers'
 * patch embeddings and the LogitLens all run at one precision; the model's load sets it
 * (src/models/open.ts). Norms, attention, RoPE and the elementwise ops stay f32: their
 * outputs reach a matmul, which rounds its inputs, before anything else reads them.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';

export type Precision = 'f32' | 'f16';
export const PRECISIONS: readonly Precision[] = ['f32', 'f16'];

const chosen = new WeakMap<Gpu, Precision>();

export function setMatmulPrecision(gpu: Gpu, p: Precision): void {
  if (p === 'f16' && !gpu.features.f16) throw new GpuError(`precision f16 needs the shader-f16 feature, which ${gpu.adapterName} lacks`);
  chosen.set(gpu, p);
}

export function matmulPrecision(gpu: Gpu): Precision {
  return chosen.get(gpu) ?? 'f32';
}

/** How outputs describe a run's arithmetic; results written before `precision` existed ran at f32. */
export function describePrecision(p: unknown): string {
  return p === 'f16'
    ? 'precision f16 (HF fp16): f16 matmul inputs and outputs, f32 accumulation; norms and attention in f32'
    : 'precision f32: f32 activations, f32 accumulation';
}
