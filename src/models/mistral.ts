/**
 * Mistral — HF MistralForCausalLM (modeling_mistral.py): LLaMA's module tree and weights
 * names exactly (modular_mistral.py derives its classes from Llama's), with one difference:
 * where the config sets `sliding_window` W, a query at position q attends to keys
 * q − W + 1 … q only. So this is LlamaForCausalLM with that mask added to every layer's
 * (together with an intervention's own mask, e.g. attention knockout's), built only when
 * the sequence is longer than the window; norm-based attention gets the window too.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { MistralConfig } from '../io/config-mistral.ts';
import { slidingWindowMask } from '../ops/attention-mask.ts';
import { add } from '../ops/elementwise.ts';
import { LlamaForCausalLM } from './llama.ts';
import type { DecoderForwardOptions, NormAttentionLayer } from './vlm.ts';

export class MistralForCausalLM extends LlamaForCausalLM {
  private get window(): number | null {
    return (this.cfg as MistralConfig).sliding_window;
  }

  override forward(gpu: Gpu, inputsEmbeds: Tensor, opts: DecoderForwardOptions = {}): Tensor {
    const W = this.window;
    const pos0 = opts.pos0 ?? 0;
    const S = inputsEmbeds.shape[0];
    if (W === null || pos0 + S <= W) return super.forward(gpu, inputsEmbeds, opts);
    const windowMask = slidingWindowMask(gpu, S, pos0, pos0 + S, W);
    const combined: Tensor[] = [];
    const mask = (layer: number): Tensor => {
      const own = opts.mask?.(layer);
      if (!own) return windowMask;
      const both = add(gpu, windowMask, own, { name: `sliding_window_mask+${layer}` });
      combined.push(both);
      return both;
    };
    try {
      return super.forward(gpu, inputsEmbeds, { ...opts, mask });
    } finally {
      gpu.release(windowMask, ...combined);
    }
  }

  override normAttention(layer: number): NormAttentionLayer {
    return { ...super.normAttention(layer), window: this.window };
  }
}
