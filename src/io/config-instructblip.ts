/**
 * InstructBlipConfig (configuration_instructblip.py): vision_config
 * `instructblip_vision_model` (EVA), qformer_config `instructblip_qformer`, text_config
 * `llama` (HF's default OPT is not implemented).
 */
import { ACTIVATIONS, divisible, imageGeometry, MAX, type ConfigDtype, type ModelConfig, type Reader } from './config.ts';
import { parseLlama, type LlamaConfig } from './config-llama.ts';

/** InstructBlipVisionConfig. */
export interface InstructBlipVisionConfig {
  model_type: 'instructblip_vision_model';
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  qkv_bias: boolean;
}

/** InstructBlipQFormerConfig. */
export interface InstructBlipQFormerConfig {
  model_type: 'instructblip_qformer';
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  max_position_embeddings: number;
  layer_norm_eps: number;
  pad_token_id: number;
  position_embedding_type: 'absolute';
  /** A layer has cross-attention to the image when `layer % cross_attention_frequency == 0`. */
  cross_attention_frequency: number;
  /** Always the vision hidden size (InstructBlipConfig overwrites it). */
  encoder_hidden_size: number;
}

/** InstructBlipConfig. */
export interface InstructBlipConfig extends ModelConfig {
  model_type: 'instructblip';
  vision_config: InstructBlipVisionConfig;
  qformer_config: InstructBlipQFormerConfig;
  text_config: LlamaConfig;
  num_query_tokens: number;
  image_token_index: number | null;
  dtype: ConfigDtype;
}

/** InstructBlipVisionConfig defaults (EVA ViT-g). */
function parseInstructBlipVision(r: Reader): InstructBlipVisionConfig {
  r.modelType('instructblip_vision_model');
  const hidden_size = r.int('hidden_size', 1408, 1, MAX.hidden);
  const num_attention_heads = r.int('num_attention_heads', 16, 1, MAX.heads);
  divisible(r, 'hidden_size', hidden_size, num_attention_heads, 'num_attention_heads');
  return {
    model_type: 'instructblip_vision_model',
    hidden_size,
    intermediate_size: r.int('intermediate_size', 6144, 1, MAX.intermediate),
    num_hidden_layers: r.int('num_hidden_layers', 39, 1, MAX.layers),
    num_attention_heads,
    ...imageGeometry(r, 224, 14),
    hidden_act: r.oneOf('hidden_act', 'gelu', ACTIVATIONS),
    layer_norm_eps: r.float('layer_norm_eps', 1e-6, 0, 1),
    qkv_bias: r.bool('qkv_bias', true),
  };
}

/** InstructBlipQFormerConfig defaults (BERT-base). */
function parseQFormer(r: Reader, visionHidden: number): InstructBlipQFormerConfig {
  r.modelType('instructblip_qformer');
  const hidden_size = r.int('hidden_size', 768, 1, MAX.hidden);
  const num_attention_heads = r.int('num_attention_heads', 12, 1, MAX.heads);
  divisible(r, 'hidden_size', hidden_size, num_attention_heads, 'num_attention_heads');
  const num_hidden_layers = r.int('num_hidden_layers', 12, 1, MAX.layers);
  return {
    model_type: 'instructblip_qformer',
    vocab_size: r.int('vocab_size', 30522, 1, MAX.vocab),
    hidden_size,
    num_hidden_layers,
    num_attention_heads,
    intermediate_size: r.int('intermediate_size', 3072, 1, MAX.intermediate),
    hidden_act: r.oneOf('hidden_act', 'gelu', ACTIVATIONS),
    max_position_embeddings: r.int('max_position_embeddings', 512, 1, MAX.positions),
    layer_norm_eps: r.float('layer_norm_eps', 1e-12, 0, 1),
    pad_token_id: r.int('pad_token_id', 0, 0, MAX.vocab),
    position_embedding_type: r.oneOf('position_embedding_type', 'absolute', ['absolute'] as const),
    // any frequency ≥ 1 is valid: layer 0 always has cross-attention
    cross_attention_frequency: r.int('cross_attention_frequency', 2, 1, MAX.layers),
    encoder_hidden_size: visionHidden,
  };
}

export function parseInstructBlip(r: Reader, dtype: ConfigDtype): InstructBlipConfig {
  const vision_config = parseInstructBlipVision(r.sub('vision_config'));
  const qformer_config = parseQFormer(r.sub('qformer_config'), vision_config.hidden_size);
  const text = r.sub('text_config');
  // InstructBlipConfig defaults the language model to OPT; only LLaMA (Vicuna) is implemented
  if (!text.has('model_type')) text.fail('model_type', 'is missing (HF would default to "opt", which is not supported; supported: llama)');
  const text_config = parseLlama(text);
  return {
    model_type: 'instructblip',
    vision_config,
    qformer_config,
    text_config,
    num_query_tokens: r.int('num_query_tokens', 32, 1, 4096),
    image_token_index: r.intOrNull('image_token_index', null),
    dtype,
  };
}

