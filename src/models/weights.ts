/**
 * Weights by HF name. Models ask for `w.pp('model.layers.3').get('self_attn.q_proj.weight')`
 * and never compute offsets (candle's VarBuilder). Two sources: a checkpoint directory
 * (streamed one tensor at a time to the GPU) or a host Map (tiny in-file tests).
 */
import type { Gpu } from '../gpu/context.ts';
import { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { uploadTensor } from '../io/upload.ts';
import { bf16BitsToF32, toF16 } from '../gpu/half.ts';
import { f16ToF32 } from '../ops/convert.ts';

export interface WeightSource {
  has(name: string): boolean;
  /** Uploads one tensor; with `split`, a tensor over the binding limit comes back in row parts. */
  load(gpu: Gpu, name: string, split?: boolean): Promise<{ parts: { tensor: Tensor; rowStart: number }[] }>;
}

export class Weights {
  constructor(
    readonly gpu: Gpu,
    private source: WeightSource,
    readonly prefix = '',
  ) {}

  pp(sub: string): Weights {
    return new Weights(this.gpu, this.source, this.join(sub));
  }

  has(name: string): boolean {
    return this.source.has(this.join(name));
  }

  async get(name: string): Promise<Tensor> {
    const full = this.join(name);
    const { parts } = await this.source.load(this.gpu, full);
    return parts[0].tensor;
  }

  /** A small parameter as f32 whatever the checkpoint dtype (embeddings added to activations). */
  async getF32(name: string): Promise<Tensor> {
    const t = await this.get(name);
    if (t.dtype === 'f32') return t;
    const f = f16ToF32(this.gpu, t);
    this.gpu.release(t);
    return f;
  }

  async maybe(name: string): Promise<Tensor | undefined> {
    return this.has(name) ? this.get(name) : undefined;
  }

  /** A tensor that may exceed the binding limit, as row ranges (embeddings, lm_head). */
  async getSplit(name: string): Promise<{ tensor: Tensor; rowStart: number }[]> {
    return (await this.source.load(this.gpu, this.join(name), true)).parts;
  }

  private join(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }
}

/**
 * Weights streamed from a checkpoint. `dtype` (the `--dtype` option) converts them as they
 * load: f16 → f32 on the GPU, f32/bf16 → f16 on the host one tensor at a time; without it
 * weights keep the checkpoint's dtype (bf16 is widened to f32 on upload).
 */
export function checkpointSource(ckpt: Checkpoint, dtype?: 'f32' | 'f16'): WeightSource {
  return {
    has: (name) => ckpt.has(name),
    async load(gpu, name, split = false) {
      const info = ckpt.info(name);
      if (dtype === 'f16' && info.dtype !== 'F16') {
        const values = await readAsF32(ckpt, name);
        const size = Math.ceil(values.length / 2) * 4;
        if (size > Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize)) {
          throw new UserError(`--dtype f16: ${name} (${info.dtype}) needs splitting on this device, which conversion does not support yet; run with the checkpoint's own dtype`);
        }
        return { parts: [{ tensor: gpu.upload(toF16(values), info.shape, name, 'f16'), rowStart: 0 }] };
      }
      const u = await uploadTensor(gpu.device, ckpt, name, { split });
      return {
        parts: u.parts.map((p) => {
          gpu.allocated += p.buffer.size;
          gpu.peakAllocated = Math.max(gpu.peakAllocated, gpu.allocated);
          let tensor = new Tensor(p.buffer, p.shape, u.dtype, u.parts.length > 1 ? `${name}[${p.rows[0]}:${p.rows[1]}]` : name);
          if (dtype === 'f32' && tensor.dtype === 'f16') {
            const wide = f16ToF32(gpu, tensor, { name: tensor.name });
            gpu.release(tensor);
            tensor = wide;
          }
          return { tensor, rowStart: p.rows[0] };
        }),
      };
    },
  };
}

async function readAsF32(ckpt: Checkpoint, name: string): Promise<Float32Array> {
  const info = ckpt.info(name);
  const bytes = await ckpt.readTensor(name);
  if (info.dtype === 'F32') return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (info.dtype === 'BF16') {
    const h = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return Float32Array.from(h, bf16BitsToF32);
  }
  throw new UserError(`${name}: cannot convert ${info.dtype} weights to f16`);
}

/** Host tensors keyed by HF name; `dtype: 'f16'` stores them as packed halves. */
export function mapSource(map: Map<string, { data: Float32Array; shape: number[] }>, dtype: 'f32' | 'f16' = 'f32'): WeightSource {
  return {
    has: (name) => map.has(name),
    async load(gpu, name) {
      const t = map.get(name);
      if (!t) throw new UserError(`missing weight ${name}`);
      const tensor = dtype === 'f16' && t.shape.length > 1 ? gpu.upload(toF16(t.data), t.shape, name, 'f16') : gpu.upload(t.data, t.shape, name);
      return { parts: [{ tensor, rowStart: 0 }] };
    },
  };
}
