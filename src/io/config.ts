/**
 * Typed, validated `config.json` of a Hugging Face checkpoint, for the two supported
 * architectures:
 *
 * - `llava`: vision_config `clip_vision_model`, text_config `llama`
 *   (configuration_llava.py, configuration_clip.py, configuration_llama.py)
 * - `instructblip`: vision_config `instructblip_vision_model`, qformer_config
 *   `instructblip_qformer`, text_config `llama` (configuration_instructblip.py)
 *
 * Keys a config.json leaves out get the default of the HF config class, exactly as
 * `from_pretrained` would: the real llava-1.5-7b-hf text_config lists only a few keys
 * and takes hidden_size 4096, 32 layers, 32 heads, MLP 11008 and θ 10000 from
 * LlamaConfig; a llava config without any vision_config gets LlavaConfig's CLIP ViT-L/14
 * at 336 px, one with a partial vision_config CLIPVisionConfig's ViT-B/32 defaults.
 * Field names are HF's. Both spellings are read: transformers 5's `rope_parameters`
 * ({rope_type, rope_theta}, which wins) and `dtype`, and transformers 4's `rope_theta` +
 * `rope_scaling` and `torch_dtype`. test/io/config-hf.test.ts checks the defaults against
 * transformers' own config classes.
 *
 * Every size is range-checked here, before anything is allocated, so a corrupt or
 * hostile config fails with a message naming the key instead of an out-of-memory.
 */
import { UserError } from '../errors.ts';

export const SUPPORTED_MODEL_TYPES = ['llava', 'instructblip'] as const;

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

/** LlamaConfig (the fields inference needs). */
export interface LlamaConfig {
  model_type: 'llama';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Always resolved: config head_dim, or hidden_size / num_attention_heads. */
  head_dim: number;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  attention_bias: boolean;
  mlp_bias: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
}

/** LlavaConfig. */
export interface LlavaConfig {
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
export interface InstructBlipConfig {
  model_type: 'instructblip';
  vision_config: InstructBlipVisionConfig;
  qformer_config: InstructBlipQFormerConfig;
  text_config: LlamaConfig;
  num_query_tokens: number;
  image_token_index: number | null;
  dtype: ConfigDtype;
}

/** `dtype` (transformers 5) or `torch_dtype` (4) of the top level: what the weights were saved as, e.g. "float16"; null when absent. */
export type ConfigDtype = string | null;

export type ModelConfig = LlavaConfig | InstructBlipConfig;

/** Generous ceilings: ~10× the largest real models, far below what breaks the process. */
const MAX = { hidden: 65_536, layers: 1_024, heads: 1_024, intermediate: 262_144, vocab: 1_048_576, image: 4_096, positions: 1_048_576 };

const ACTIVATIONS = ['gelu', 'quick_gelu', 'silu', 'gelu_new', 'gelu_pytorch_tanh', 'relu'];

/** Reads typed keys from one JSON object, applying HF defaults, with errors naming the key path. */
class Reader {
  constructor(
    readonly file: string,
    private path: string,
    private obj: Record<string, unknown>,
  ) {}

  fail(key: string, msg: string): never {
    throw new UserError(`${this.file}: ${this.path}${key} ${msg}`);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  int(key: string, dflt: number, min: number, max: number): number {
    const v = this.has(key) ? this.obj[key] : dflt;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(key, `= ${JSON.stringify(v)} is not an integer`);
    if (v < min || v > max) this.fail(key, `= ${v} is out of range [${min}, ${max}]`);
    return v;
  }

  intOrNull(key: string, dflt: number | null): number | null {
    if (!this.has(key) && dflt === null) return null;
    return this.int(key, dflt ?? 0, -1, Number.MAX_SAFE_INTEGER);
  }

  float(key: string, dflt: number, min: number, max: number): number {
    const v = this.has(key) ? this.obj[key] : dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `= ${JSON.stringify(v)} is not a number`);
    if (v <= min || v > max) this.fail(key, `= ${v} is out of range (${min}, ${max}]`);
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.has(key) ? this.obj[key] : dflt;
    if (typeof v !== 'boolean') this.fail(key, `= ${JSON.stringify(v)} is not true/false`);
    return v;
  }

  oneOf<T extends string>(key: string, dflt: T, allowed: readonly T[]): T {
    const v = this.has(key) ? this.obj[key] : dflt;
    if (typeof v !== 'string' || !allowed.includes(v as T)) {
      this.fail(key, `= ${JSON.stringify(v)} is not supported (supported: ${allowed.join(', ')})`);
    }
    return v as T;
  }

  /** A nested config object (absent → {} so every key takes its default). */
  sub(key: string): Reader {
    const v = this.obj[key] ?? {};
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'is not an object');
    return new Reader(this.file, `${this.path}${key}.`, v as Record<string, unknown>);
  }

  modelType(expected: string): void {
    this.oneOf('model_type', expected, [expected]);
  }
}

function divisible(r: Reader, key: string, size: number, heads: number, headsKey: string): void {
  if (size % heads !== 0) r.fail(key, `= ${size} is not divisible by ${headsKey} = ${heads}`);
}

function imageGeometry(r: Reader, dfltImage: number, dfltPatch: number): { image_size: number; patch_size: number } {
  const image_size = r.int('image_size', dfltImage, 1, MAX.image);
  const patch_size = r.int('patch_size', dfltPatch, 1, image_size);
  if (image_size % patch_size !== 0) r.fail('image_size', `= ${image_size} is not a multiple of patch_size = ${patch_size}`);
  return { image_size, patch_size };
}

/** CLIPVisionConfig defaults (clip-vit-base-patch32). */
function parseClipVision(r: Reader): ClipVisionConfig {
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

/**
 * θ of plain RoPE from `rope_parameters` (transformers 5), else `rope_theta` with
 * `rope_scaling` (4); any rope_type other than "default" is refused.
 */
function ropeTheta(r: Reader): number {
  const key = r.has('rope_parameters') ? 'rope_parameters' : 'rope_scaling';
  if (r.has(key)) {
    const p = r.sub(key);
    const kind = p.raw('rope_type') ?? p.raw('type') ?? 'default';
    if (kind !== 'default') r.fail(key, `= ${JSON.stringify(r.raw(key))} is not supported (only plain RoPE)`);
    if (key === 'rope_parameters' && p.has('rope_theta')) return p.float('rope_theta', 10000, 0, 1e12);
  }
  return r.float('rope_theta', 10000, 0, 1e12);
}

/** LlamaConfig defaults (LLaMA-7B), except vocab_size which the caller may pass from the outer config. */
function parseLlama(r: Reader, outerVocab?: number): LlamaConfig {
  r.modelType('llama');
  const hidden_size = r.int('hidden_size', 4096, 1, MAX.hidden);
  const num_attention_heads = r.int('num_attention_heads', 32, 1, MAX.heads);
  const num_key_value_heads = r.int('num_key_value_heads', num_attention_heads, 1, num_attention_heads);
  if (num_attention_heads % num_key_value_heads !== 0) {
    r.fail('num_attention_heads', `= ${num_attention_heads} is not a multiple of num_key_value_heads = ${num_key_value_heads}`);
  }
  if (!r.has('head_dim')) divisible(r, 'hidden_size', hidden_size, num_attention_heads, 'num_attention_heads');
  const head_dim = r.int('head_dim', Math.floor(hidden_size / num_attention_heads), 2, MAX.hidden);
  if (head_dim % 2 !== 0) r.fail('head_dim', `= ${head_dim} is odd; rotary embeddings rotate pairs of dimensions`);
  const rope_theta = ropeTheta(r);
  return {
    model_type: 'llama',
    vocab_size: r.has('vocab_size') || outerVocab === undefined ? r.int('vocab_size', 32000, 1, MAX.vocab) : outerVocab,
    hidden_size,
    intermediate_size: r.int('intermediate_size', 11008, 1, MAX.intermediate),
    num_hidden_layers: r.int('num_hidden_layers', 32, 1, MAX.layers),
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    hidden_act: r.oneOf('hidden_act', 'silu', ACTIVATIONS),
    max_position_embeddings: r.int('max_position_embeddings', 2048, 1, MAX.positions),
    rms_norm_eps: r.float('rms_norm_eps', 1e-6, 0, 1),
    rope_theta,
    attention_bias: r.bool('attention_bias', false),
    mlp_bias: r.bool('mlp_bias', false),
    tie_word_embeddings: r.bool('tie_word_embeddings', false),
    bos_token_id: r.intOrNull('bos_token_id', 1),
    eos_token_id: Array.isArray(r.raw('eos_token_id')) ? (r.raw('eos_token_id') as number[]) : r.intOrNull('eos_token_id', 2),
    pad_token_id: r.intOrNull('pad_token_id', null),
  };
}

/** LlavaConfig's vision tower when config.json has no vision_config: CLIP ViT-L/14 at 336 px. */
const LLAVA_DEFAULT_VISION = { intermediate_size: 4096, hidden_size: 1024, patch_size: 14, image_size: 336, num_hidden_layers: 24, num_attention_heads: 16, projection_dim: 768 };

function parseLlava(r: Reader, dtype: ConfigDtype): LlavaConfig {
  const vision_config = parseClipVision(r.has('vision_config') ? r.sub('vision_config') : new Reader(r.file, 'vision_config.', LLAVA_DEFAULT_VISION));
  // LlavaConfig of transformers 4.36 kept vocab_size at the top level too
  const outerVocab = r.has('vocab_size') ? r.int('vocab_size', 32000, 1, MAX.vocab) : undefined;
  const text_config = parseLlama(r.sub('text_config'), outerVocab);
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
    model_type: 'llava',
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

function parseInstructBlip(r: Reader, dtype: ConfigDtype): InstructBlipConfig {
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

/** Parses the text of a config.json; `file` names it in errors. */
export function parseConfig(text: string, file = 'config.json'): ModelConfig {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new UserError(`${file}: not a JSON object`);
  const r = new Reader(file, '', root as Record<string, unknown>);
  const type = r.raw('model_type');
  const key = r.has('dtype') ? 'dtype' : 'torch_dtype';
  const raw = r.has(key) ? r.raw(key) : null;
  if (raw !== null && typeof raw !== 'string') r.fail(key, `= ${JSON.stringify(raw)} is not a dtype name such as "float16"`);
  const dtype = raw as ConfigDtype;
  if (type === 'llava') return parseLlava(r, dtype);
  if (type === 'instructblip') return parseInstructBlip(r, dtype);
  throw new UserError(`${file}: model_type ${JSON.stringify(type)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
}
