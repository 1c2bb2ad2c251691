/** HF nn.LayerNorm: weight and bias [d], eps from the config (CLIP, EVA, Q-Former). */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { layerNorm } from '../ops/layernorm.ts';
import type { Weights } from './weights.ts';

export class LayerNorm {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
    readonly eps: number,
  ) {}

  static async load(w: Weights, eps: number): Promise<LayerNorm> {
    return new LayerNorm(await w.get('weight'), await w.get('bias'), eps);
  }

  forward(gpu: Gpu, x: Tensor, name?: string): Tensor {
    return layerNorm(gpu, x, this.weight, this.bias, this.eps, { name });
  }
}
