/**
 * 16-bit float tensors widened to f32 on the GPU (kernel: shaders/convert.wgsl), for
 * parameters that are added to activations (position embeddings, class embedding) or any
 * f16/bf16 tensor a kernel wants as f32.
 *
 *   f16ToF32(gpu, t)                 t: an 'f16' Tensor (packed two per u32) → f32, same shape
 *   bf16ToF32(gpu, words, shape)     bf16 has no DType of its own: pass the raw bf16 values
 *                                    as a 'u32' Tensor of ⌈n/2⌉ words (element 2k in the low
 *                                    half of word k, i.e. the safetensors bytes as they are;
 *                                    `uploadBf16` makes one from host bits) plus the logical
 *                                    shape (n = its element count) → f32 [shape]
 * Both conversions are exact (f16 and bf16 values, subnormals included, are f32 values).
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import { numel, type Tensor } from '../gpu/tensor.ts';
import { elementGrid } from './common.ts';

const WG = 256;

function convert(gpu: Gpu, src: Tensor, shape: readonly number[], bf16: boolean, name: string): Tensor {
  const n = numel(shape);
  const out = gpu.tensor(shape, 'f32', name);
  const words = Math.ceil(n / 2);
  gpu.dispatch({
    kernel: bf16 ? 'convert.bf16' : 'convert.f16',
    pipeline: { shader: 'convert.wgsl', defines: { BF16: bf16 }, constants: { WG } },
    params: { values: [n] },
    bindings: [src, out],
    workgroups: elementGrid(gpu, words, WG),
    shapes: `n=${n}`,
    bytes: 6 * n,
  });
  return out;
}

export function f16ToF32(gpu: Gpu, t: Tensor, opts: { name?: string } = {}): Tensor {
  if (t.dtype !== 'f16') throw new GpuError(`f16ToF32: ${t} is not f16`);
  return convert(gpu, t, t.shape, false, opts.name ?? `${t.name}.f32`);
}

export function bf16ToF32(gpu: Gpu, words: Tensor, shape: readonly number[], opts: { name?: string } = {}): Tensor {
  if (words.dtype !== 'u32') throw new GpuError(`bf16ToF32: ${words} must be a u32 tensor of packed bf16 pairs`);
  const n = numel(shape);
  if (words.numel !== Math.ceil(n / 2)) {
    throw new GpuError(`bf16ToF32: ${words} holds ${2 * words.numel} bf16 slots; shape [${shape.join(', ')}] needs ⌈${n}/2⌉ = ${Math.ceil(n / 2)} words`);
  }
  return convert(gpu, words, shape, true, opts.name ?? `${words.name}.f32`);
}

/** Uploads raw bf16 bits as the packed 'u32' tensor bf16ToF32 takes (odd counts padded with 0). */
export function uploadBf16(gpu: Gpu, bits: Uint16Array, name: string): Tensor {
  const padded = new Uint16Array(2 * Math.ceil(bits.length / 2));
  padded.set(bits);
  return gpu.upload(new Uint32Array(padded.buffer), [padded.length / 2], name, 'u32');
}
