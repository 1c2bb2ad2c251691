/**
 * Deterministic random weights for generated checkpoints.
 *
 * Every tensor gets its own stream, seeded from (seed, tensor name), so its values do
 * not depend on tensor order or sharding. Initialisation follows HF's `_init_weights`
 * in spirit: normal(0, 0.02) for matrices, embeddings and biases (biases non-zero on
 * purpose, so tests see them), normal(1, 0.02) for norm weights. Chameleon's VQ encoder is
 * the exception (`initStd`): its outputs decide discrete codes, so it keeps its signal.
 */
import { f32ToBf16Bits, f32ToF16Bits } from '../src/gpu/half.ts';
import type { SafetensorsDtype } from '../src/io/safetensors.ts';
import { mulberry32 } from '../src/util/random.ts';

export const INIT_STD = 0.02;

export { mulberry32 };

/** FNV-1a of the name mixed with the seed: one independent stream per tensor. */
export function tensorSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Standard normal samples by Box–Muller. */
export function normals(n: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const a = 2 * Math.PI * rand();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

/** LayerNorm / RMSNorm / GroupNorm scales (HF: ones): `…norm.weight`, `…LayerNorm.weight`, `…layer_norm1.weight`, `pre_layrnorm.weight`, `norm_out.weight`. */
export function isNormWeight(name: string): boolean {
  return /norm(\d|_out)?\.weight$/i.test(name);
}

/** Mean of the init distribution for a tensor name. */
export function initMean(name: string): number {
  return isNormWeight(name) ? 1 : 0;
}

/**
 * The latent's spread per channel with `initStd`'s VQ weights (measured ≈ 0.4–0.8 across
 * positions): SiLU of norm_out's unit-variance output through the 1/fan_in convolutions
 * conv_out and quant_conv. The codebook is drawn at that scale, so codes vary with the image.
 */
export const CODEBOOK_STD = 0.6;

/**
 * Std of the init of one tensor. Chameleon's VQ convolutions (`…vqmodel.….weight`, 4-D) get
 * normal(0, 1/fan_in), variance-preserving as torch's default conv init is, so the latent
 * carries the image rather than the biases; its codebook, the latent's spread.
 */
export function initStd(name: string, shape: readonly number[]): number {
  if (!name.includes('vqmodel.')) return INIT_STD;
  if (name.endsWith('quantize.embedding.weight')) return CODEBOOK_STD;
  if (shape.length === 4 && name.endsWith('.weight')) return 1 / Math.sqrt(shape[1] * shape[2] * shape[3]);
  return INIT_STD;
}

/** The values of one tensor (as f32), deterministic in (seed, name). */
export function initValues(name: string, shape: readonly number[], seed: number): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const v = normals(count, mulberry32(tensorSeed(seed, name)));
  const mean = initMean(name);
  const std = initStd(name, shape);
  for (let i = 0; i < count; i++) v[i] = mean + std * v[i];
  return v;
}

/** f32 values encoded as the bytes of a safetensors dtype (F32, F16 or BF16). */
export function encodeValues(values: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'F16':
    case 'BF16': {
      const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
      return new Uint8Array(out.buffer);
    }
    default:
      throw new Error(`encodeValues: unsupported dtype ${dtype}`);
  }
}

const TABLE_BITS = 12;

/**
 * Fast fp16 filler for full-size random checkpoints (billions of values): draws from a
 * table of 4096 pre-computed normal(mean, std) halves (`initStd` of the tensor's shape)
 * with an xorshift index, about 1 ns a value. The values are not i.i.d. normals, only
 * plausible weights for timing.
 */
export function* fastF16Chunks(name: string, shape: readonly number[], seed: number, chunkElems = 8 << 20): Generator<Uint8Array> {
  const count = shape.reduce((a, b) => a * b, 1);
  const mean = initMean(name);
  const std = initStd(name, shape);
  const table = new Uint16Array(1 << TABLE_BITS);
  const base = normals(table.length, mulberry32(seed ^ (mean ? 0x9e3779b9 : 0)));
  for (let i = 0; i < table.length; i++) table[i] = f32ToF16Bits(mean + std * base[i]);
  let x = tensorSeed(seed, name) | 1;
  const mask = table.length - 1;
  const buf = new Uint16Array(Math.min(chunkElems, count));
  for (let done = 0; done < count; done += buf.length) {
    const n = Math.min(buf.length, count - done);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      buf[i] = table[(x >>> 7) & mask];
    }
    yield new Uint8Array(buf.buffer, 0, n * 2);
  }
}
