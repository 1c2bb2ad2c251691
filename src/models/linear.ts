/** HF nn.Linear: weight [out, in] (f32 or packed f16), optional bias [out]. */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { linear, type LinearOptions } from '../ops/linear.ts';
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
}
