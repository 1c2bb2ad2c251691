/**
 * ChameleonConfig (configuration_chameleon.py): one flat config — the language model's
 * LLaMA-like fields at the top level (defaults Chameleon-7B's: vocab 65536, hidden 4096,
 * 32 layers and heads, MLP 11008, 4096 positions, RMSNorm eps 1e-5, plain RoPE), plus
 * `swin_norm`, `vq_config` (ChameleonVQVAEConfig: the image tokenizer) and
 * `vocabulary_map` (token name → id; HF reads `<image>` and the `IMGIMG…` entries from it).
 *
 * Image codes → BPE ids (HF ChameleonImageVocabularyMapping): the entries whose name starts
 * with `IMGIMG`, name `IMGIMG` + digits written as letters A..J (0..9) + one last character,
 * give code = those digits. HF maps a code without an entry to id 0 silently; here every
 * code 0..num_embeddings−1 must have one (refused otherwise, before any weight loads).
 */
import { MAX, type ModelConfig, type Reader } from './config.ts';
import { parseLlamaLike, type LlamaConfig } from './config-llama.ts';

/** ChameleonVQVAEConfig (the fields the encoder and quantiser read). */
export interface ChameleonVqConfig {
  embed_dim: number;
  num_embeddings: number;
  double_latent: boolean;
  latent_channels: number;
  resolution: number;
  in_channels: number;
  base_channels: number;
  channel_multiplier: number[];
  num_res_blocks: number;
  attn_resolutions: number[];
  attn_type: 'vanilla' | null;
}

/** The language model of ChameleonForConditionalGeneration (the top level of its config). */
export interface ChameleonTextConfig extends Omit<LlamaConfig, 'model_type'> {
  model_type: 'chameleon';
  /** ChameleonSwinDecoderLayer: the norms after attention and MLP (on their outputs). */
  swin_norm: boolean;
}

export interface ChameleonConfig extends ModelConfig {
  model_type: 'chameleon';
  text_config: ChameleonTextConfig;
  /** The VQ encoder's geometry for the common fields: resolution, downsampling factor as the "patch". */
  vision_config: { model_type: 'chameleon_vqgan'; hidden_size: number; num_hidden_layers: number; image_size: number; patch_size: number };
  vq_config: ChameleonVqConfig;
  /** vocabulary_map["<image>"]: the placeholder the processor writes. */
  image_token_id: number;
  /** BPE id of image code k (the IMGIMG entries), k = 0..num_embeddings−1. */
  image_code_ids: number[];
}

const CHAMELEON_DEFAULTS = {
  vocab_size: 65536,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: null,
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
};

const CODE_DIGITS = 'ABCDEFGHIJ';

/** The image code an IMGIMG name stands for (HF's remap), or null when its digits are not A..J. */
export function imageCodeOfName(name: string): number | null {
  const body = name.slice('IMGIMG'.length, -1);
  if (!body) return null;
  let s = '';
  for (const ch of body) {
    const d = CODE_DIGITS.indexOf(ch);
    if (d < 0) return null;
    s += d;
  }
  return Number(s);
}

/** The IMGIMG name of image code k (the inverse, with Chameleon's last character "Z"). */
export function imageTokenName(k: number): string {
  return `IMGIMG${[...String(k)].map((d) => CODE_DIGITS[+d]).join('')}Z`;
}

function intList(r: Reader, key: string, dflt: number[] | null): number[] | null {
  const v = r.has(key) ? r.raw(key) : dflt;
  if (v === null) return null;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0 && x <= MAX.hidden)) r.fail(key, `= ${JSON.stringify(v)} is not a list of integers`);
  return v as number[];
}

function parseVq(r: Reader): ChameleonVqConfig {
  const base_channels = r.int('base_channels', 128, 1, MAX.hidden);
  const channel_multiplier = intList(r, 'channel_multiplier', [1, 1, 2, 2, 4])!;
  if (channel_multiplier.length === 0 || channel_multiplier.some((m) => m < 1)) r.fail('channel_multiplier', 'must list positive multipliers, one per resolution level');
  // GroupNorm(32) on every level's channels
  for (const c of [base_channels, ...channel_multiplier.map((m) => m * base_channels)]) {
    if (c % 32 !== 0) r.fail('base_channels', `× channel_multiplier gives ${c} channels, not a multiple of GroupNorm's 32 groups`);
  }
  const attn_type = r.raw('attn_type') === null ? null : r.oneOf('attn_type', 'vanilla', ['vanilla']);
  return {
    embed_dim: r.int('embed_dim', 256, 1, MAX.hidden),
    num_embeddings: r.int('num_embeddings', 8192, 1, MAX.vocab),
    double_latent: r.bool('double_latent', false),
    latent_channels: r.int('latent_channels', 256, 1, MAX.hidden),
    resolution: r.int('resolution', 512, 1, MAX.image),
    in_channels: r.int('in_channels', 3, 3, 3),
    base_channels,
    channel_multiplier,
    num_res_blocks: r.int('num_res_blocks', 2, 1, 64),
    attn_resolutions: intList(r, 'attn_resolutions', null) ?? [],
    attn_type,
  };
}

/** BPE ids of the image codes 0..n−1 from vocabulary_map (refusals in the file header). */
function imageCodeIds(r: Reader, map: Record<string, unknown>, n: number): number[] {
  const ids: number[] = new Array(n).fill(-1);
  let entries = 0;
  for (const [name, id] of Object.entries(map)) {
    if (!name.startsWith('IMGIMG')) continue;
    entries++;
    const k = imageCodeOfName(name);
    if (k === null) r.fail('vocabulary_map', `entry ${JSON.stringify(name)} is not IMGIMG + digits written A..J + one character`);
    if (!Number.isInteger(id) || (id as number) < 0) r.fail('vocabulary_map', `entry ${JSON.stringify(name)} = ${JSON.stringify(id)} is not a token id`);
    if (k < n) ids[k] = id as number;
  }
  if (entries === 0) r.fail('vocabulary_map', 'has no IMGIMG… entries: the image codes cannot be mapped to token ids');
  const missing = ids.indexOf(-1);
  if (missing >= 0) r.fail('vocabulary_map', `has ${entries} IMGIMG… entries but no entry for image code ${missing} (${imageTokenName(missing)}); the codebook has vq_config.num_embeddings = ${n} codes`);
  return ids;
}

export function parseChameleon(r: Reader, dtype: string | null): ChameleonConfig {
  r.modelType('chameleon');
  const lm = parseLlamaLike(r, CHAMELEON_DEFAULTS);
  if (lm.rope_scaling) r.fail('rope_parameters', 'with a rope_type other than "default" is not supported for Chameleon');
  if (r.int('model_parallel_size', 1, 1, 1024) !== 1) r.fail('model_parallel_size', 'other than 1 is not supported (HF applies the q/k norm per shard)');
  const text_config: ChameleonTextConfig = { ...lm, model_type: 'chameleon', swin_norm: r.bool('swin_norm', false) };
  if (text_config.num_attention_heads * text_config.head_dim !== text_config.hidden_size) r.fail('head_dim', `× num_attention_heads must equal hidden_size (ChameleonAttention)`);
  const vq_config = parseVq(r.sub('vq_config'));
  const rawMap = r.raw('vocabulary_map');
  if (!rawMap || typeof rawMap !== 'object' || Array.isArray(rawMap)) r.fail('vocabulary_map', 'is missing: it maps image codes to token ids (the IMGIMG… entries) and names <image>');
  const map = rawMap as Record<string, unknown>;
  const image_token_id = map['<image>'];
  if (!Number.isInteger(image_token_id) || (image_token_id as number) < 0 || (image_token_id as number) >= lm.vocab_size) r.fail('vocabulary_map', `["<image>"] = ${JSON.stringify(image_token_id)} is not a token id below vocab_size ${lm.vocab_size}`);
  const image_code_ids = imageCodeIds(r, map, vq_config.num_embeddings);
  const outside = image_code_ids.find((id) => id >= lm.vocab_size);
  if (outside !== undefined) r.fail('vocabulary_map', `maps an image code to ${outside}, outside vocab_size ${lm.vocab_size}`);
  const levels = vq_config.channel_multiplier.length;
  return {
    model_type: 'chameleon',
    text_config,
    vision_config: { model_type: 'chameleon_vqgan', hidden_size: vq_config.base_channels, num_hidden_layers: levels, image_size: vq_config.resolution, patch_size: 2 ** (levels - 1) },
    vq_config,
    image_token_id: image_token_id as number,
    image_code_ids,
    dtype,
  };
}

/** The VQ tokenizer in one line, for `inspect`. */
export function describeChameleonVq(v: ChameleonVqConfig): string {
  const side = v.resolution / 2 ** (v.channel_multiplier.length - 1);
  return `chameleon_vqgan: ${v.resolution} px, channels ${v.base_channels} × [${v.channel_multiplier.join(', ')}], ${v.num_res_blocks} ResNet blocks a level, latent ${v.latent_channels} → codebook ${v.num_embeddings} × ${v.embed_dim}; ${side}×${side} = ${side * side} image tokens`;
}
