/**
 * Typed, validated `config.json` of a Hugging Face checkpoint: what every family's config
 * shares and the reader its parser uses. Each family parses its own config in
 * io/config-<family>.ts (the family table, models/registry.ts, dispatches on
 * `model_type`); language models in io/config-<lm>.ts.
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

/**
 * What every decoder-only language model's config has (`text_config`), HF names: the sizes
 * probes, interventions and generation read. Each LM's own config extends it.
 */
export interface LmConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Always resolved: config head_dim, or hidden_size / num_attention_heads. */
  head_dim: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
}

/** `dtype` (transformers 5) or `torch_dtype` (4) of the top level: what the weights were saved as, e.g. "float16"; null when absent. */
export type ConfigDtype = string | null;

/**
 * What every family's config has: its `model_type`, the language model's config, the
 * vision tower's geometry, the saved dtype. Each family's parser (io/config-<family>.ts)
 * returns its own type extending this one.
 */
export interface ModelConfig {
  model_type: string;
  text_config: LmConfig;
  vision_config: { model_type: string; hidden_size: number; num_hidden_layers: number; image_size: number; patch_size: number };
  dtype: ConfigDtype;
}

/** Generous ceilings: ~10× the largest real models, far below what breaks the process. */
export const MAX = { hidden: 65_536, layers: 1_024, heads: 1_024, intermediate: 262_144, vocab: 1_048_576, image: 4_096, positions: 1_048_576 };

export const ACTIVATIONS = ['gelu', 'quick_gelu', 'silu', 'gelu_new', 'gelu_pytorch_tanh', 'relu'];

/** Reads typed keys from one JSON object, applying HF defaults, with errors naming the key path. */
export class Reader {
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

export function divisible(r: Reader, key: string, size: number, heads: number, headsKey: string): void {
  if (size % heads !== 0) r.fail(key, `= ${size} is not divisible by ${headsKey} = ${heads}`);
}

export function imageGeometry(r: Reader, dfltImage: number, dfltPatch: number): { image_size: number; patch_size: number } {
  const image_size = r.int('image_size', dfltImage, 1, MAX.image);
  const patch_size = r.int('patch_size', dfltPatch, 1, image_size);
  if (image_size % patch_size !== 0) r.fail('image_size', `= ${image_size} is not a multiple of patch_size = ${patch_size}`);
  return { image_size, patch_size };
}

/**
 * The top level of a config.json text: a Reader on it, its `model_type` (unchecked: the
 * family table dispatches on it) and its dtype. `file` names it in errors.
 */
export function readConfigJson(text: string, file = 'config.json'): { r: Reader; modelType: unknown; dtype: ConfigDtype } {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new UserError(`${file}: not a JSON object`);
  const r = new Reader(file, '', root as Record<string, unknown>);
  const key = r.has('dtype') ? 'dtype' : 'torch_dtype';
  const raw = r.has(key) ? r.raw(key) : null;
  if (raw !== null && typeof raw !== 'string') r.fail(key, `= ${JSON.stringify(raw)} is not a dtype name such as "float16"`);
  return { r, modelType: r.raw('model_type'), dtype: raw as ConfigDtype };
}
