/**
 * LlavaConfig (configuration_llava.py, configuration_clip.py): vision_config
 * `clip_vision_model`, text_config `llama`. A config without any vision_config gets
 * LlavaConfig's CLIP ViT-L/14 at 336 px, one with a partial vision_config
 * CLIPVisionConfig's ViT-B/32 defaults.
 */
import { ACTIVATIONS, divisible, imageGeometry, MAX, Reader, type ConfigDtype, type LmConfig, type ModelConfig } from './config.ts';
import { parseLlama, type LlamaConfig } from './config-llama.ts';

/** CLIPVisionConfig. */
export interface ClipVisionConfig {
  model_type: 'clip_vision_model';
  hidden_size: number;
  intermediate_size: number;
  projection_dim: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
}

/** LlavaConfig. */
export interface LlavaConfig extends ModelConfig {
  model_type: 'llava';
  vision_config: ClipVisionConfig;
  text_config: LlamaConfig;
  image_token_index: number;
  projector_hidden_act: string;
  /** Index into the vision tower's hidden states (negative from the end), or several to concatenate. */
  vision_feature_layer: number | number[];
  vision_feature_select_strategy: 'default' | 'full';
  multimodal_projector_bias: boolean;
  image_seq_length: number;
  tie_word_embeddings: boolean;
  dtype: ConfigDtype;
}

/** CLIPVisionConfig defaults (clip-vit-base-patch32). */
export function parseClipVision(r: Reader): ClipVisionConfig {
  r.modelType('clip_vision_model');
  const hidden_size = r.int('hidden_size', 768, 1, MAX.hidden);
  const num_attention_heads = r.int('num_attention_heads', 12, 1, MAX.heads);
  divisible(r, 'hidden_size', hidden_size, num_attention_heads, 'num_attention_heads');
  return {
    model_type: 'clip_vision_model',
    hidden_size,
    intermediate_size: r.int('intermediate_size', 3072, 1, MAX.intermediate),
    projection_dim: r.int('projection_dim', 512, 1, MAX.hidden),
    num_hidden_layers: r.int('num_hidden_layers', 12, 1, MAX.layers),
    num_attention_heads,
    num_channels: r.int('num_channels', 3, 1, 4),
    ...imageGeometry(r, 224, 32),
    hidden_act: r.oneOf('hidden_act', 'quick_gelu', ACTIVATIONS),
    layer_norm_eps: r.float('layer_norm_eps', 1e-5, 0, 1),
  };
}

/** LlavaConfig's vision tower when config.json has no vision_config: CLIP ViT-L/14 at 336 px. */
const LLAVA_DEFAULT_VISION = { intermediate_size: 4096, hidden_size: 1024, patch_size: 14, image_size: 336, num_hidden_layers: 24, num_attention_heads: 16, projection_dim: 768 };

export function parseLlava(r: Reader, dtype: ConfigDtype): LlavaConfig {
  return { ...parseLlavaFields(r, dtype, parseLlama), model_type: 'llava' };
}

/**
 * What LlavaConfig and LlavaNextConfig share (the same keys and defaults), with the
 * language model's config read by `parseText`.
 */
export function parseLlavaFields<T extends LmConfig>(
  r: Reader,
  dtype: ConfigDtype,
  parseText: (r: Reader, outerVocab?: number) => T,
): Omit<LlavaConfig, 'model_type' | 'text_config'> & { text_config: T } {
  const vision_config = parseClipVision(r.has('vision_config') ? r.sub('vision_config') : new Reader(r.file, 'vision_config.', LLAVA_DEFAULT_VISION));
  // LlavaConfig of transformers 4.36 kept vocab_size at the top level too
  const outerVocab = r.has('vocab_size') ? r.int('vocab_size', 32000, 1, MAX.vocab) : undefined;
  const text_config = parseText(r.sub('text_config'), outerVocab);
  const hiddenStates = vision_config.num_hidden_layers + 1;
  const layers = r.raw('vision_feature_layer') ?? -2;
  const layerList = Array.isArray(layers) ? layers : [layers];
  if (layerList.length === 0) r.fail('vision_feature_layer', 'is an empty list');
  for (const l of layerList) {
    if (typeof l !== 'number' || !Number.isInteger(l) || l < -hiddenStates || l >= hiddenStates) {
      r.fail('vision_feature_layer', `= ${JSON.stringify(layers)}: each entry must be an integer in [${-hiddenStates}, ${hiddenStates - 1}] (the vision tower has ${hiddenStates} hidden states)`);
    }
  }
  const vision_feature_select_strategy = r.oneOf('vision_feature_select_strategy', 'default', ['default', 'full'] as const);
  const tie = r.bool('tie_word_embeddings', false) || text_config.tie_word_embeddings;
  return {
    vision_config,
    text_config: { ...text_config, tie_word_embeddings: tie },
    image_token_index: r.int('image_token_index', 32000, 0, text_config.vocab_size - 1),
    projector_hidden_act: r.oneOf('projector_hidden_act', 'gelu', ACTIVATIONS),
    vision_feature_layer: layers as number | number[],
    vision_feature_select_strategy,
    multimodal_projector_bias: r.bool('multimodal_projector_bias', true),
    // informational (HF's processor counts image tokens from the image and patch sizes); 576 is LlavaConfig's default whatever the tower
    image_seq_length: r.int('image_seq_length', 576, 1, MAX.positions),
    tie_word_embeddings: tie,
    dtype,
  };
}


/** One line for `inspect`. */
export function describeClipVisionConfig(v: ClipVisionConfig): string {
  return `${v.model_type}: hidden ${v.hidden_size}, ${v.num_hidden_layers} layers, ${v.num_attention_heads} heads, MLP ${v.intermediate_size}, image ${v.image_size} / patch ${v.patch_size} → ${(v.image_size / v.patch_size) ** 2 + 1} positions`;
}
