/** HF nn.Linear: weight [out, in] (f32 or packed f16), optional bias [out]. */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { linear, type Activation, type LinearOptions } from '../ops/linear.ts';
import type { Weights } from './weights.ts';

export class Linear {
  constructor(
    readonly weight: Tensor,
    readonly bias?: Tensor,
  ) {}

  /** The bias is kept in f32 (the matmul epilogue adds it in f32; it is tiny). */
  static async load(w: Weights, bias: boolean | 'optional' = 'optional'): Promise<Linear> {
    const b = bias === true || (bias === 'optional' && w.has('bias')) ? await w.getF32('bias') : undefined;
    return new Linear(await w.get('weight'), b);
  }

  forward(gpu: Gpu, x: Tensor, opts: Omit<LinearOptions, 'bias'> = {}): Tensor {
    return linear(gpu, x, this.weight, { ...opts, bias: this.bias });
  }

  /**
   * Splits a fused projection (EVA's `qkv`, weight [n·out, in]) into n Linears of `out`
   * rows each, on the GPU, and releases the fused tensors.
   */
  split(gpu: Gpu, n: number): Linear[] {
    const [rows, cols] = this.weight.shape;
    const out = rows / n;
    const parts = Array.from({ length: n }, (_, i) => {
      const w = gpu.tensor([out, cols], this.weight.dtype, `${this.weight.name}[${i}/${n}]`);
      gpu.copy(this.weight, w, i * out * cols, 0, out * cols);
      let b: Tensor | undefined;
      if (this.bias) {
        b = gpu.tensor([out], 'f32', `${this.bias.name}[${i}/${n}]`);
        gpu.copy(this.bias, b, i * out, 0, out);
      }
      return new Linear(w, b);
    });
    gpu.release(this.weight, this.bias);
    return parts;
  }
}

/** HF `hidden_act` → the matmul epilogue's activation. */
export function activationOf(hiddenAct: string): Activation {
  switch (hiddenAct) {
    case 'quick_gelu':
    case 'gelu':
    case 'silu':
      return hiddenAct;
    default:
      throw new UserError(`unsupported activation "${hiddenAct}" (supported: gelu, quick_gelu, silu)`);
  }
}
