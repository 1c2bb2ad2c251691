/**
 * A tensor on the GPU: a storage buffer plus shape and element type.
 *
 * Activations are always f32. Weights are f32 or f16; f16 values stay packed two per
 * u32 word (little end first, as in the safetensors bytes) and kernels unpack them with
 * `unpack2x16float`, so fp16 checkpoints run on adapters without `shader-f16`.
 */
export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export class Tensor {
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly name: string,
  ) {}

  get numel(): number {
    return numel(this.shape);
  }

  get byteSize(): number {
    return byteSize(this.shape, this.dtype);
  }

  /** `[2,3,4]:f16` — used in error messages and profiler labels. */
  toString(): string {
    return `${this.name}[${this.shape.join(',')}]:${this.dtype}`;
  }
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes a tensor occupies on the GPU: f16 rounds up to whole u32 words. */
export function byteSize(shape: readonly number[], dtype: DType): number {
  const n = numel(shape);
  return dtype === 'f16' ? Math.ceil(n / 2) * 4 : n * 4;
}
