/**
 * MistralConfig (configuration_mistral.py): LlamaConfig's fields (no attention or MLP
 * biases) with Mistral-7B's defaults (MLP 14336, 8 KV heads, 131072 positions) and
 * `sliding_window` (default 4096; null attends over the whole context): a query at
 * position p attends to the keys at p − window + 1 … p (HF masking_utils
 * `sliding_window_overlay`: kv > q − window).
 */
import { MAX, type Reader } from './config.ts';
import { parseLlama, parseLlamaLike, type LlamaConfig, type LlamaLikeDefaults } from './config-llama.ts';

export interface MistralConfig extends Omit<LlamaConfig, 'model_type'> {
  model_type: 'mistral';
  /** Keys a query attends to, itself included; null for the whole causal context. */
  sliding_window: number | null;
}

const MISTRAL_DEFAULTS: LlamaLikeDefaults = {
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  max_position_embeddings: 4096 * 32,
  rms_norm_eps: 1e-6,
};

export function parseMistral(r: Reader, outerVocab?: number): MistralConfig {
  r.modelType('mistral');
  // an explicit null turns the window off; absent is MistralConfig's 4096
  const sliding = r.raw('sliding_window') === null ? null : r.int('sliding_window', 4096, 1, MAX.positions);
  return { ...parseLlamaLike(r, MISTRAL_DEFAULTS, outerVocab), attention_bias: false, mlp_bias: false, model_type: 'mistral', sliding_window: sliding };
}

/** The configs of the LLaMA module tree: LLaMA (Vicuna, Llama-3) or Mistral. */
export type LlamaLikeConfig = LlamaConfig | MistralConfig;

/** A `text_config` of the LLaMA module tree by its model_type (HF's default: llama). */
export function parseLlamaLikeConfig(r: Reader, outerVocab?: number): LlamaLikeConfig {
  const type = r.raw('model_type') ?? 'llama';
  if (type === 'llama') return parseLlama(r, outerVocab);
  if (type === 'mistral') return parseMistral(r, outerVocab);
  return r.fail('model_type', `= ${JSON.stringify(type)} is not supported as the language model (supported: llama, mistral)`);
}
