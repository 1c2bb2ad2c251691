/**
 * The family table: every model family phaselens runs is one entry here, and everything
 * that differs between families is read from it — the config parser, the expected
 * tensors and key layouts, opening a folder (`openModel`), the dump points, the
 * description, the capabilities code asks for (never a family's name), and the shapes
 * the generators write (make-tiny, make-random, the demo organisms). The CLI help,
 * `inspect`, the demo, the page and the report derive from it; test/models/families.test.ts
 * runs every entry end to end, so a family cannot be half added.
 *
 * Adding a family: its model file (the module tree, its tensor list and key layouts, its
 * `prepare`), its config parser (io/config-<family>.ts), one entry below, its tests.
 *
 * Browser-safe: no file system here (the generators write the files an entry describes).
 */
import { UserError } from '../errors.ts';
import type { DirectorySource } from '../io/byte-source.ts';
import { readConfigJson, type ConfigDtype, type ModelConfig, type Reader } from '../io/config.ts';
import { describeChameleonVq, imageTokenName, parseChameleon, type ChameleonConfig } from '../io/config-chameleon.ts';
import { parseInstructBlip, type InstructBlipConfig } from '../io/config-instructblip.ts';
import { describeLlamaConfig } from '../io/config-llama.ts';
import { describeClipVisionConfig, parseLlava, type LlavaConfig } from '../io/config-llava.ts';
import { parseLlavaNext, type LlavaNextConfig } from '../io/config-llava-next.ts';
import { bestLayoutMatch, type ExpectedTensor, type TensorMatch, type TensorTable } from '../io/expected-tensors.ts';
import type { Layout } from '../io/layouts.ts';
import { missingTokenizerReason, readChatTemplate, readImageProcessorConfig, readQformerTokenizer, readTokenizer } from '../io/model-files.ts';
import { checkCheckpointWith, validateCheckpointWith, type CheckpointKind, type CheckpointReport } from '../io/validate.ts';
import { CHAMELEON_LAYOUTS, chameleonDumpPoints, chameleonFiles, chameleonTensors } from './chameleon.ts';
import { INSTRUCTBLIP_LAYOUTS, instructBlipDumpPoints, instructBlipFiles, instructBlipTensors } from './instructblip.ts';
import { LLAVA_LAYOUTS, llavaDumpPoints, llavaFiles, llavaTensors } from './llava.ts';
import { LLAVA_NEXT_LAYOUTS, llavaNextDumpPoints, llavaNextFiles, llavaNextTensors } from './llava-next.ts';
import type { OpenedCheckpoint } from './open.ts';
import type { Capabilities, VlmFiles } from './vlm.ts';

/** A config.json object as HF writes it. */
export type ConfigJson = Record<string, unknown>;

/** Sizes of the image a generated checkpoint's tower reads. */
export interface ImageGeometry {
  imageSize: number;
  patchSize: number;
}

/** The non-weight files a generated checkpoint of the family gets (weights-tools/processor-files.ts writes them). */
export interface GeneratedFiles {
  /** The HF processor class the files name. */
  processorClass: string;
  /** CLIP's (resize the shortest edge, centre crop) or BLIP's (resize to a square). */
  imageProcessor: 'CLIPImageProcessor' | 'BlipImageProcessor' | 'LlavaNextImageProcessor' | 'ChameleonImageProcessor';
  /** tokenizer_config.json keys that differ from the llava-1.5 tokenizer's. */
  tokenizerOverrides?: Record<string, string>;
  /** Special tokens added to the llava-1.5 tokenizer after its own (ids 32002, …), e.g. Chameleon's start/end of image. */
  addedTokens?: string[];
  /** Keys transformers 5 writes into processor_config.json for this config. */
  processorConfig?: (config: ModelConfig) => Record<string, unknown>;
}

export interface FamilyEntry<C extends ModelConfig = ModelConfig> {
  /** config.json `model_type`; the family's name in outputs. */
  modelType: string;
  /** The name figures and buttons show, e.g. "LLaVA-1.5". */
  title: string;
  /** One line for help texts and reports. */
  description: string;
  capabilities: Capabilities;
  /** The top level of config.json → the family's config, HF defaults applied (io/config-<family>.ts). */
  parseConfig(r: Reader, dtype: ConfigDtype): C;
  /** The config in a few lines, for `inspect`. */
  describeConfig(c: C): string[];
  /** Every tensor a checkpoint holds, canonical names, in module order (the model files' trees). */
  expectedTensors(c: C): ExpectedTensor[];
  /** Key layouts folders come in, hub first (the canonical names). */
  layouts: readonly Layout[];
  /** The layout transformers 5's save_pretrained writes (make-tiny --layout transformers5). */
  transformers5Layout: string;
  /** The folder as VlmFiles, once validated: reads the family's own files (chat template, second tokenizer). */
  open(c: OpenedCheckpoint, config: C): Promise<VlmFiles>;
  /** The family's part of the dump contract: [dump name, hook name] per tower activation. */
  dumpPoints(c: C): [string, string][];
  files: GeneratedFiles;
  /** make-tiny's config.json around the tiny LM `text_config` (awkward sizes, `geometry` images). */
  tiny(text_config: ConfigJson, geometry: ImageGeometry): ConfigJson;
  /** The trained demo organism's config.json around its LM (weights-tools/train). */
  organism(text_config: ConfigJson, geometry: ImageGeometry): ConfigJson;
  /** make-random's full-size shapes: name → config.json. */
  shapes: Readonly<Record<string, () => ConfigJson>>;
}

/** A family entry, type-checked against its own config type. */
function family<C extends ModelConfig>(e: FamilyEntry<C>): FamilyEntry {
  return e as unknown as FamilyEntry;
}

/** The real llava-hf/llava-1.5-7b-hf config.json. */
const LLAVA_1_5_7B: ConfigJson = {
  architectures: ['LlavaForConditionalGeneration'],
  ignore_index: -100,
  image_token_index: 32000,
  model_type: 'llava',
  pad_token_id: 32001,
  projector_hidden_act: 'gelu',
  text_config: {
    _name_or_path: 'lmsys/vicuna-7b-v1.5',
    architectures: ['LlamaForCausalLM'],
    max_position_embeddings: 4096,
    model_type: 'llama',
    rms_norm_eps: 1e-5,
    torch_dtype: 'float16',
    vocab_size: 32064,
  },
  tie_word_embeddings: false,
  torch_dtype: 'float16',
  transformers_version: '4.36.0.dev0',
  vision_config: { hidden_size: 1024, image_size: 336, intermediate_size: 4096, model_type: 'clip_vision_model', num_attention_heads: 16, num_hidden_layers: 24, patch_size: 14, projection_dim: 768, vocab_size: 32000 },
  vision_feature_layer: -2,
  vision_feature_select_strategy: 'default',
  vocab_size: 32064,
};

/** The mid-size benchmark LM: 1024 wide, 8 layers, the real vocabulary of `base`. */
const MID_LM = { hidden_size: 1024, intermediate_size: 2752, num_attention_heads: 16, num_key_value_heads: 16, num_hidden_layers: 8 };
const sub = (json: ConfigJson, key: string) => json[key] as ConfigJson;

/** A mid-size LLaVA for benchmarks on CPU adapters: the 7B layout scaled down (CLIP 512 wide, 224 px → 256 patches; ~0.19 B parameters). */
function llavaMid(): ConfigJson {
  return {
    ...LLAVA_1_5_7B,
    image_seq_length: 256,
    text_config: { ...sub(LLAVA_1_5_7B, 'text_config'), ...MID_LM },
    vision_config: { ...sub(LLAVA_1_5_7B, 'vision_config'), hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 6, image_size: 224, patch_size: 14, projection_dim: 512 },
  };
}

/**
 * Salesforce/instructblip-vicuna-7b's shape: the HF defaults of InstructBlipVisionConfig
 * and InstructBlipQFormerConfig, Q-Former vocab 30523 (BERT + [DEC]) and Vicuna-7B with
 * vocab 32001, as convert_instructblip_original_to_pytorch.py builds it.
 */
const INSTRUCTBLIP_VICUNA_7B: ConfigJson = {
  architectures: ['InstructBlipForConditionalGeneration'],
  model_type: 'instructblip',
  num_query_tokens: 32,
  qformer_config: { model_type: 'instructblip_qformer', vocab_size: 30523 },
  text_config: { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 32001, pad_token_id: 0, torch_dtype: 'float16' },
  torch_dtype: 'float16',
  use_decoder_only_language_model: true,
  vision_config: { model_type: 'instructblip_vision_model' },
};

/** What both generated families share at the top level. */
const generated = (text_config: ConfigJson) => ({ tie_word_embeddings: text_config.tie_word_embeddings ?? false, torch_dtype: text_config.torch_dtype, transformers_version: '4.36.0.dev0' });

const LLAVA = family<LlavaConfig>({
  modelType: 'llava',
  title: 'LLaVA-1.5',
  description: 'LLaVA-1.5 (LlavaForConditionalGeneration): CLIP ViT, MLP projector, LLaMA/Vicuna',
  capabilities: { chatTemplate: true, patchGrid: true, tiles: false, qformer: false },
  parseConfig: parseLlava,
  describeConfig: (c) => {
    const v = c.vision_config;
    const t = c.text_config;
    return [
      `vision     ${describeClipVisionConfig(v)}`,
      `projector  ${v.hidden_size} → ${t.hidden_size} → ${t.hidden_size} (${c.projector_hidden_act}), features from layer ${JSON.stringify(c.vision_feature_layer)}, strategy ${c.vision_feature_select_strategy}`,
      `language   ${describeLlamaConfig(t)}`,
    ];
  },
  expectedTensors: llavaTensors,
  layouts: LLAVA_LAYOUTS,
  transformers5Layout: 'transformers5',
  open: async (c, cfg) => llavaFiles(c, cfg, await readChatTemplate(c.dir)),
  dumpPoints: llavaDumpPoints,
  files: { processorClass: 'LlavaProcessor', imageProcessor: 'CLIPImageProcessor' },
  tiny: (text_config, g) => ({
    architectures: ['LlavaForConditionalGeneration'],
    ignore_index: -100,
    image_seq_length: (g.imageSize / g.patchSize) ** 2,
    image_token_index: 32000,
    model_type: 'llava',
    pad_token_id: 32001,
    projector_hidden_act: 'gelu',
    text_config,
    ...generated(text_config),
    vision_config: { hidden_size: 32, image_size: g.imageSize, intermediate_size: 74, model_type: 'clip_vision_model', num_attention_heads: 4, num_hidden_layers: 3, patch_size: g.patchSize, projection_dim: 32 },
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    vocab_size: text_config.vocab_size,
  }),
  organism: (text_config, g) => ({
    architectures: ['LlavaForConditionalGeneration'],
    ignore_index: -100,
    image_seq_length: (g.imageSize / g.patchSize) ** 2,
    image_token_index: 32000,
    model_type: 'llava',
    pad_token_id: 32001,
    projector_hidden_act: 'gelu',
    text_config,
    ...generated(text_config),
    // features are hidden_states[-2], so the last layer is there only for the layout
    vision_config: { hidden_size: 64, image_size: g.imageSize, intermediate_size: 256, model_type: 'clip_vision_model', num_attention_heads: 4, num_hidden_layers: 4, patch_size: g.patchSize, projection_dim: 64 },
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    vocab_size: text_config.vocab_size,
  }),
  shapes: {
    'llava-7b': () => LLAVA_1_5_7B,
    'llava-mid': llavaMid,
    // LLaVA-1.5-7B's depth at a CPU adapter's width: llava-mid's tower, a 32-layer LLaMA 512 wide (~0.1 B parameters)
    'llava-deep': () => {
      const mid = llavaMid();
      return { ...mid, text_config: { ...sub(mid, 'text_config'), hidden_size: 512, intermediate_size: 1376, num_attention_heads: 8, num_key_value_heads: 8, num_hidden_layers: 32 } };
    },
  },
});

/**
 * llava-hf/llava-v1.6-vicuna-7b-hf's config.json as published (LLaVA-1.5-7B's towers and
 * Vicuna-7B with vocab 32064, the default pinpoints), written from the model card and
 * LlavaNextConfig's defaults: no copy of the file is at hand here.
 */
const LLAVA_V16_VICUNA_7B: ConfigJson = {
  ...LLAVA_1_5_7B,
  architectures: ['LlavaNextForConditionalGeneration'],
  model_type: 'llava_next',
  image_grid_pinpoints: [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
  use_image_newline_parameter: true,
  transformers_version: '4.39.0.dev0',
};

/**
 * llava-hf/llama3-llava-next-8b-hf's shape: Meta-Llama-3-8B-Instruct (32 layers, hidden
 * 4096, 32 heads / 8 KV heads, MLP 14336, RMSNorm eps 1e-5, rope_theta 500000, 8192
 * positions) with the vocabulary padded to 128320 (`<image>` 128256), BOS 128000, EOS
 * `<|eot_id|>` 128009; CLIP-L/14-336 and the default pinpoints. Written from the model card
 * and the Llama-3 config (no copy of the file is at hand here).
 */
const LLAMA3_LLAVA_NEXT_8B: ConfigJson = {
  ...LLAVA_V16_VICUNA_7B,
  image_token_index: 128256,
  pad_token_id: 128257,
  text_config: {
    _name_or_path: 'meta-llama/Meta-Llama-3-8B-Instruct',
    architectures: ['LlamaForCausalLM'],
    bos_token_id: 128000,
    eos_token_id: 128009,
    hidden_size: 4096,
    intermediate_size: 14336,
    max_position_embeddings: 8192,
    model_type: 'llama',
    num_attention_heads: 32,
    num_hidden_layers: 32,
    num_key_value_heads: 8,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    torch_dtype: 'bfloat16',
    vocab_size: 128320,
  },
  torch_dtype: 'bfloat16',
  vocab_size: 128320,
};

/** A generated LLaVA-NeXT config.json: LLaVA's `llava` one with the pinpoints of 1×2, 2×1 and 2×2 tiles. */
function llavaNextJson(llava: ConfigJson, g: ImageGeometry): ConfigJson {
  const t = g.imageSize;
  return { ...llava, architectures: ['LlavaNextForConditionalGeneration'], model_type: 'llava_next', image_grid_pinpoints: [[t, 2 * t], [2 * t, t], [2 * t, 2 * t]] };
}

const LLAVA_NEXT = family<LlavaNextConfig>({
  modelType: 'llava_next',
  title: 'LLaVA-NeXT',
  description: 'LLaVA-NeXT (LlavaNextForConditionalGeneration): CLIP ViT on a base view + anyres tiles, MLP projector, image newlines, LLaMA/Vicuna/Llama-3/Mistral',
  capabilities: { chatTemplate: true, patchGrid: true, tiles: true, qformer: false },
  parseConfig: parseLlavaNext,
  describeConfig: (c) => {
    const v = c.vision_config;
    const t = c.text_config;
    const window = t.model_type === 'mistral' ? `, sliding window ${t.sliding_window ?? 'none'}` : '';
    return [
      `vision     ${describeClipVisionConfig(v)}, per view`,
      `tiles      ${v.image_size} px, pinpoints ${c.image_grid_pinpoints.map(([h, w]) => `${h}×${w}`).join(' ')} (height×width), base view first, image_newline after each row`,
      `projector  ${v.hidden_size} → ${t.hidden_size} → ${t.hidden_size} (${c.projector_hidden_act}), features from layer ${JSON.stringify(c.vision_feature_layer)}, strategy ${c.vision_feature_select_strategy}`,
      `language   ${describeLlamaConfig(t)}${window}`,
    ];
  },
  expectedTensors: llavaNextTensors,
  layouts: LLAVA_NEXT_LAYOUTS,
  transformers5Layout: 'transformers5',
  open: async (c, cfg) => llavaNextFiles(c, cfg, await readChatTemplate(c.dir)),
  dumpPoints: llavaNextDumpPoints,
  files: { processorClass: 'LlavaNextProcessor', imageProcessor: 'LlavaNextImageProcessor' },
  tiny: (text_config, g) => llavaNextJson(LLAVA.tiny(text_config, g), g),
  organism: (text_config, g) => llavaNextJson(LLAVA.organism(text_config, g), g),
  shapes: {
    'llava-v1.6-vicuna-7b': () => LLAVA_V16_VICUNA_7B,
    'llama3-llava-next-8b': () => LLAMA3_LLAVA_NEXT_8B,
    // llava-mid's towers and LM (224-px tiles, pinpoints of up to 2×2 tiles): 5 views, ≤ 256 + 32·33 image tokens
    'llava-next-mid': () => llavaNextJson(llavaMid(), { imageSize: 224, patchSize: 14 }),
  },
});

const INSTRUCTBLIP = family<InstructBlipConfig>({
  modelType: 'instructblip',
  title: 'InstructBLIP',
  description: 'InstructBLIP (InstructBlipForConditionalGeneration): EVA ViT, Q-Former reading the instruction, LLaMA/Vicuna',
  capabilities: { chatTemplate: false, patchGrid: false, tiles: false, qformer: true },
  parseConfig: parseInstructBlip,
  describeConfig: (c) => {
    const v = c.vision_config;
    const q = c.qformer_config;
    return [
      `vision     ${v.model_type}: hidden ${v.hidden_size}, ${v.num_hidden_layers} layers, ${v.num_attention_heads} heads, MLP ${v.intermediate_size}, image ${v.image_size} / patch ${v.patch_size} → ${(v.image_size / v.patch_size) ** 2 + 1} positions`,
      `q-former   hidden ${q.hidden_size}, ${q.num_hidden_layers} layers, ${q.num_attention_heads} heads, cross-attention every ${q.cross_attention_frequency}, ${c.num_query_tokens} queries, vocab ${q.vocab_size}`,
      `language   ${describeLlamaConfig(c.text_config)}`,
    ];
  },
  expectedTensors: instructBlipTensors,
  layouts: INSTRUCTBLIP_LAYOUTS,
  transformers5Layout: 'hub',
  open: async (c, cfg) => instructBlipFiles(c, cfg, await readQformerTokenizer(c.dir)),
  dumpPoints: instructBlipDumpPoints,
  files: {
    processorClass: 'InstructBlipProcessor',
    imageProcessor: 'BlipImageProcessor',
    // Salesforce/instructblip-vicuna-7b's tokenizer_config.json names `</s>` as BOS (and UNK)
    tokenizerOverrides: { bos_token: '</s>', unk_token: '</s>' },
    processorConfig: (c) => ({ num_query_tokens: (c as InstructBlipConfig).num_query_tokens }),
  },
  tiny: (text_config, g) => instructBlipJson(text_config, g, { queries: 8, vision: 40, qformer: 32, mlp: 74, visionLayers: 3, qformerPositions: 128 }),
  organism: (text_config, g) => instructBlipJson(text_config, g, { queries: 16, vision: 64, qformer: 64, mlp: 256, visionLayers: 3, qformerPositions: 64, qformerLayers: 4 }),
  shapes: {
    'instructblip-vicuna-7b': () => INSTRUCTBLIP_VICUNA_7B,
    // about llava-mid's cost: EVA 512 wide, 6 layers, 224 px; Q-Former 384 wide, 4 layers, 32 queries; llava-mid's LLaMA with vocab 32001 (~0.21 B parameters)
    'instructblip-mid': () => ({
      ...INSTRUCTBLIP_VICUNA_7B,
      image_token_index: 32000,
      qformer_config: { ...sub(INSTRUCTBLIP_VICUNA_7B, 'qformer_config'), hidden_size: 384, intermediate_size: 1536, num_attention_heads: 6, num_hidden_layers: 4, cross_attention_frequency: 2, encoder_hidden_size: 512 },
      text_config: { ...sub(INSTRUCTBLIP_VICUNA_7B, 'text_config'), ...MID_LM },
      vision_config: { ...sub(INSTRUCTBLIP_VICUNA_7B, 'vision_config'), hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 6, image_size: 224, patch_size: 14 },
    }),
  },
});

/** A generated InstructBLIP config.json: EVA `vision` wide, a Q-Former `qformer` wide with `queries` queries. */
function instructBlipJson(
  text_config: ConfigJson,
  g: ImageGeometry,
  s: { queries: number; vision: number; qformer: number; mlp: number; visionLayers: number; qformerPositions: number; qformerLayers?: number },
): ConfigJson {
  return {
    architectures: ['InstructBlipForConditionalGeneration'],
    // initializer_factor left out (HF's default is 1.0): JSON.stringify writes 1.0 as 1,
    // which transformers ≥ 5 refuses for a float field
    image_token_index: 32000,
    initializer_range: 0.02,
    model_type: 'instructblip',
    num_query_tokens: s.queries,
    qformer_config: {
      attention_probs_dropout_prob: 0.1,
      cross_attention_frequency: 2,
      encoder_hidden_size: s.vision,
      hidden_act: 'gelu',
      hidden_dropout_prob: 0.1,
      hidden_size: s.qformer,
      intermediate_size: s.mlp,
      layer_norm_eps: 1e-12,
      max_position_embeddings: s.qformerPositions,
      model_type: 'instructblip_qformer',
      num_attention_heads: 4,
      num_hidden_layers: s.qformerLayers ?? 3,
      pad_token_id: 0,
      position_embedding_type: 'absolute',
      vocab_size: 30523,
    },
    text_config,
    ...generated(text_config),
    use_decoder_only_language_model: true,
    vision_config: {
      hidden_act: 'gelu',
      hidden_size: s.vision,
      image_size: g.imageSize,
      intermediate_size: s.mlp,
      layer_norm_eps: 1e-6,
      model_type: 'instructblip_vision_model',
      num_attention_heads: 4,
      num_hidden_layers: s.visionLayers,
      patch_size: g.patchSize,
      qkv_bias: true,
    },
  };
}

/**
 * facebook/chameleon-7b's config.json: ChameleonConfig's defaults (which are the 7B's) as the
 * converter writes them, with the vocabulary_map's entries phaselens reads — `<image>` 8711,
 * `<racm3:break>` 8197, `<eoss>` 8196 and the 8192 image codes IMGIMG… at ids 4..8195 — and
 * none of its other 57 000 names (they only name text tokens). Written from the model card
 * and configuration_chameleon.py: no copy of the file is at hand here.
 */
function chameleon7b(): ConfigJson {
  const vocabulary_map: Record<string, number> = { '<image>': 8711, '<racm3:break>': 8197, '<eoss>': 8196, '<s>': 0, '<pad>': 1, '</s>': 2 };
  for (let k = 0; k < 8192; k++) vocabulary_map[imageTokenName(k)] = 4 + k;
  return {
    architectures: ['ChameleonForConditionalGeneration'],
    attention_bias: false,
    bos_token_id: 0,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 4096,
    intermediate_size: 11008,
    max_position_embeddings: 4096,
    model_type: 'chameleon',
    num_attention_heads: 32,
    num_hidden_layers: 32,
    num_key_value_heads: 32,
    pad_token_id: 1,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    swin_norm: false,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    transformers_version: '4.44.0.dev0',
    vocab_size: 65536,
    vq_config: { attn_resolutions: null, attn_type: 'vanilla', base_channels: 128, channel_multiplier: [1, 1, 2, 2, 4], double_latent: false, dropout: 0.0, embed_dim: 256, in_channels: 3, latent_channels: 256, model_type: 'chameleon_vqgan', num_embeddings: 8192, num_res_blocks: 2, resolution: 512 },
    vocabulary_map,
  };
}

/**
 * A generated Chameleon config.json around a LLaMA-layout LM (`text_config`'s sizes at the
 * top level) and the llava-1.5 tokenizer: a VQ encoder of `size` px and `levels` levels (the
 * ViT geometry of the other families does not apply), `codes` image codes at the top of the
 * vocabulary. `vq` overrides the tiny encoder's other sizes.
 */
function chameleonJson(text_config: ConfigJson, size: number, levels: number, codes: number, vq: ConfigJson = {}): ConfigJson {
  const vocab = text_config.vocab_size as number;
  const vocabulary_map: Record<string, number> = { '<image>': 32000 };
  for (let k = 0; k < codes; k++) vocabulary_map[imageTokenName(k)] = vocab - codes + k;
  const { model_type: _, architectures: __, ...lm } = text_config;
  return {
    ...lm,
    architectures: ['ChameleonForConditionalGeneration'],
    model_type: 'chameleon',
    swin_norm: false,
    vq_config: { attn_resolutions: null, attn_type: 'vanilla', base_channels: 32, channel_multiplier: Array.from({ length: levels }, (_, i) => Math.min(i + 1, 2)), double_latent: false, embed_dim: 8, in_channels: 3, latent_channels: 8, num_embeddings: codes, num_res_blocks: 1, resolution: size, ...vq },
    vocabulary_map,
  };
}

/**
 * A mid-size Chameleon for benchmarks on CPU adapters: the 7B's VQ layout (5 levels,
 * channel_multiplier 1 1 2 2 4, 2 ResNet blocks a level, 8192 codes of 256) at 32 base
 * channels and 256 px (16×16 = 256 image tokens; GroupNorm over up to 65 536 elements a
 * group), and the mid LLaMA (1024 wide, 8 layers) with the codes after the llava-1.5
 * tokenizer's 32 005 ids (vocabulary 40 960; ~0.19 B parameters).
 */
function chameleonMid(): ConfigJson {
  const lm = { ...sub(LLAVA_1_5_7B, 'text_config'), ...MID_LM, vocab_size: 40960, pad_token_id: 32001, bos_token_id: 1, eos_token_id: 2 };
  return chameleonJson(lm, 256, 5, 8192, { base_channels: 32, channel_multiplier: [1, 1, 2, 2, 4], embed_dim: 256, latent_channels: 256, num_res_blocks: 2 });
}

const CHAMELEON = family<ChameleonConfig>({
  modelType: 'chameleon',
  title: 'Chameleon',
  description: 'Chameleon (ChameleonForConditionalGeneration): VQ image tokenizer, images as tokens of a LLaMA-like LM with q/k norm',
  // its image tokens are the VQ latent grid, row by row (models/chameleon.ts)
  capabilities: { chatTemplate: false, patchGrid: true, tiles: false, qformer: false },
  parseConfig: parseChameleon,
  describeConfig: (c) => [`image      ${describeChameleonVq(c.vq_config)}`, `language   ${describeLlamaConfig(c.text_config)}, per-head q/k LayerNorm${c.text_config.swin_norm ? ', swin_norm' : ''}`],
  expectedTensors: chameleonTensors,
  layouts: CHAMELEON_LAYOUTS,
  transformers5Layout: 'hub',
  open: async (c, cfg) => chameleonFiles(c, cfg),
  dumpPoints: chameleonDumpPoints,
  files: {
    processorClass: 'ChameleonProcessor',
    imageProcessor: 'ChameleonImageProcessor',
    // start/end of image and the chat-mode separator (Chameleon's names) after <image> 32000 and <pad> 32001
    addedTokens: ['<racm3:break>', '<eoss>', '<reserved08706>'],
    tokenizerOverrides: { sep_token: '<reserved08706>' },
    processorConfig: (c) => ({ image_seq_length: (c.vision_config.image_size / c.vision_config.patch_size) ** 2, image_token: '<image>' }),
  },
  // 16 px → 8×8 = 64 image tokens; the organism 32 px → 64 too
  tiny: (text_config) => chameleonJson(text_config, 16, 2, 48),
  organism: (text_config) => chameleonJson(text_config, 32, 3, 64),
  shapes: { 'chameleon-7b': chameleon7b, 'chameleon-mid': chameleonMid },
});

/** Every family, in the order help texts list them. */
export const FAMILIES: readonly FamilyEntry[] = [LLAVA, LLAVA_NEXT, INSTRUCTBLIP, CHAMELEON];

/** The families' names (their `model_type`s). */
export const FAMILY_NAMES: readonly string[] = FAMILIES.map((f) => f.modelType);

/** The title of a family named in a results file ('' for one the table does not know, e.g. from a newer version). */
export function familyTitle(modelType: string): string {
  return FAMILIES.find((e) => e.modelType === modelType)?.title ?? '';
}

/** The entry of `modelType`, or a UserError naming the known ones. */
export function familyOf(modelType: unknown, where = 'model_type'): FamilyEntry {
  const f = FAMILIES.find((e) => e.modelType === modelType);
  if (!f) throw new UserError(`${where} ${JSON.stringify(modelType)} is not supported (supported: ${FAMILY_NAMES.join(', ')})`);
  return f;
}

/** Parses the text of a config.json through its family's parser; `file` names it in errors. */
export function parseConfig(text: string, file = 'config.json'): ModelConfig {
  const { r, modelType, dtype } = readConfigJson(text, file);
  return familyOf(modelType, `${file}: model_type`).parseConfig(r, dtype);
}

/** The full list of tensors a checkpoint for `config` holds, in module order. */
export function expectedTensors(config: ModelConfig): ExpectedTensor[] {
  return familyOf(config.model_type).expectedTensors(config);
}

/** The key layouts of each family. */
export const LAYOUTS: Readonly<Record<string, readonly Layout[]>> = Object.fromEntries(FAMILIES.map((f) => [f.modelType, f.layouts]));

/** The layout `id` of `family`, or undefined. */
export function findLayout(family: string, id: string): Layout | undefined {
  return familyOf(family).layouts.find((l) => l.id === id);
}

/** The checkpoint read in whichever of its family's layouts explains its names best. */
export function matchCheckpoint(config: ModelConfig, actual: TensorTable): TensorMatch {
  return bestLayoutMatch(expectedTensors(config), familyOf(config.model_type).layouts, actual);
}

function kindOf(text: string, file: string): CheckpointKind {
  const { r, modelType, dtype } = readConfigJson(text, file);
  const f = familyOf(modelType, `${file}: model_type`);
  const config = f.parseConfig(r, dtype);
  return { config, expected: f.expectedTensors(config), layouts: f.layouts, summary: f.describeConfig(config) };
}

/** Reads config.json and the safetensors headers and compares them; never throws for a mismatch (io/validate.ts). */
export function checkCheckpoint(dir: DirectorySource): Promise<CheckpointReport> {
  return checkCheckpointWith(dir, kindOf);
}

/** The gate before loading: the report (checkpoint open) when the folder is usable, else a UserError with every problem. */
export function validateCheckpoint(dir: DirectorySource): Promise<CheckpointReport> {
  return validateCheckpointWith(dir, kindOf);
}

/**
 * `openModel`: a HF checkpoint folder → its family's VlmFiles, dispatched on config.json's
 * `model_type`. The folder is validated against its config and the tokenizer and
 * processor files are read before any GPU allocation, so every downstream command can
 * check its inputs first. Reads through a DirectorySource only: the same call serves a
 * folder on disk and files picked in a browser.
 */
export async function openModel(dir: DirectorySource): Promise<VlmFiles> {
  const report = await validateCheckpoint(dir);
  try {
    const tokenizer = await readTokenizer(dir);
    const entry = familyOf(report.config.model_type);
    const c: OpenedCheckpoint = {
      dir,
      report,
      entry,
      tokenizer,
      noTokenizer: tokenizer ? '' : await missingTokenizerReason(dir),
      processor: await readImageProcessorConfig(dir),
    };
    return await entry.open(c, report.config);
  } catch (e) {
    await report.checkpoint.close();
    throw e;
  }
}
