/**
 * LlamaConfig (configuration_llama.py): the language model of LLaVA-1.5, InstructBLIP and
 * LLaVA-NeXT (Vicuna, Llama-3). Defaults are LLaMA-7B's, as `from_pretrained` fills them in.
 * RoPE: plain, or `rope_type` "llama3" (Llama-3.x's frequency scaling, src/ops/rope.ts);
 * other scalings are refused. `parseLlamaLike` is shared with MistralConfig (the same
 * fields, other defaults: config-mistral.ts).
 */
import { ACTIVATIONS, divisible, MAX, type LmConfig, type Reader } from './config.ts';

/** HF's `rope_type: "llama3"` parameters (modeling_rope_utils.py `_compute_llama3_parameters`). */
export interface Llama3RopeScalingConfig {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** LlamaConfig (the fields inference needs). */
export interface LlamaConfig extends LmConfig {
  model_type: 'llama';
  intermediate_size: number;
  hidden_act: string;
  rms_norm_eps: number;
  rope_theta: number;
  /** Null for plain RoPE. */
  rope_scaling: Llama3RopeScalingConfig | null;
  attention_bias: boolean;
  mlp_bias: boolean;
}

/**
 * θ and scaling of RoPE from `rope_parameters` (transformers 5: {rope_type, rope_theta, …}),
 * else `rope_theta` with `rope_scaling` (4); rope_type "default" or "llama3".
 */
function rope(r: Reader): { rope_theta: number; rope_scaling: Llama3RopeScalingConfig | null } {
  const key = r.has('rope_parameters') ? 'rope_parameters' : 'rope_scaling';
  let rope_theta = r.float('rope_theta', 10000, 0, 1e12);
  if (!r.has(key)) return { rope_theta, rope_scaling: null };
  const p = r.sub(key);
  if (key === 'rope_parameters' && p.has('rope_theta')) rope_theta = p.float('rope_theta', 10000, 0, 1e12);
  const kind = p.raw('rope_type') ?? p.raw('type') ?? 'default';
  if (kind === 'default') return { rope_theta, rope_scaling: null };
  if (kind !== 'llama3') r.fail(key, `= ${JSON.stringify(r.raw(key))}: rope_type ${JSON.stringify(kind)} is not supported (supported: default, llama3)`);
  const need = (k: string) => {
    if (!p.has(k)) p.fail(k, 'is missing (rope_type llama3 needs factor, low_freq_factor, high_freq_factor, original_max_position_embeddings)');
  };
  ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'].forEach(need);
  const low = p.float('low_freq_factor', 1, 0, 1e6);
  const high = p.float('high_freq_factor', 4, 0, 1e6);
  if (high <= low) p.fail('high_freq_factor', `= ${high} must be larger than low_freq_factor = ${low}`);
  return {
    rope_theta,
    rope_scaling: {
      rope_type: 'llama3',
      factor: p.float('factor', 8, 0, 1e6),
      low_freq_factor: low,
      high_freq_factor: high,
      original_max_position_embeddings: p.int('original_max_position_embeddings', 8192, 1, MAX.positions),
    },
  };
}

/** The defaults a LLaMA-like config class fills in (LlamaConfig's, MistralConfig's). */
export interface LlamaLikeDefaults {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** null: as many as the attention heads. */
  num_key_value_heads: number | null;
  max_position_embeddings: number;
  rms_norm_eps: number;
}

const LLAMA_DEFAULTS: LlamaLikeDefaults = {
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: null,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
};

/** LlamaConfig defaults (LLaMA-7B), except vocab_size which the caller may pass from the outer config. */
export function parseLlama(r: Reader, outerVocab?: number): LlamaConfig {
  r.modelType('llama');
  return { ...parseLlamaLike(r, LLAMA_DEFAULTS, outerVocab), model_type: 'llama' };
}

/** The fields LlamaConfig and MistralConfig share, with the class's defaults `d`. */
export function parseLlamaLike(r: Reader, d: LlamaLikeDefaults, outerVocab?: number): Omit<LlamaConfig, 'model_type'> {
  const hidden_size = r.int('hidden_size', d.hidden_size, 1, MAX.hidden);
  const num_attention_heads = r.int('num_attention_heads', d.num_attention_heads, 1, MAX.heads);
  const num_key_value_heads = r.int('num_key_value_heads', d.num_key_value_heads ?? num_attention_heads, 1, num_attention_heads);
  if (num_attention_heads % num_key_value_heads !== 0) {
    r.fail('num_attention_heads', `= ${num_attention_heads} is not a multiple of num_key_value_heads = ${num_key_value_heads}`);
  }
  if (!r.has('head_dim')) divisible(r, 'hidden_size', hidden_size, num_attention_heads, 'num_attention_heads');
  const head_dim = r.int('head_dim', Math.floor(hidden_size / num_attention_heads), 2, MAX.hidden);
  if (head_dim % 2 !== 0) r.fail('head_dim', `= ${head_dim} is odd; rotary embeddings rotate pairs of dimensions`);
  return {
    vocab_size: r.has('vocab_size') || outerVocab === undefined ? r.int('vocab_size', d.vocab_size, 1, MAX.vocab) : outerVocab,
    hidden_size,
    intermediate_size: r.int('intermediate_size', d.intermediate_size, 1, MAX.intermediate),
    num_hidden_layers: r.int('num_hidden_layers', d.num_hidden_layers, 1, MAX.layers),
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    hidden_act: r.oneOf('hidden_act', 'silu', ACTIVATIONS),
    max_position_embeddings: r.int('max_position_embeddings', d.max_position_embeddings, 1, MAX.positions),
    rms_norm_eps: r.float('rms_norm_eps', d.rms_norm_eps, 0, 1),
    ...rope(r),
    attention_bias: r.bool('attention_bias', false),
    mlp_bias: r.bool('mlp_bias', false),
    tie_word_embeddings: r.bool('tie_word_embeddings', false),
    bos_token_id: r.intOrNull('bos_token_id', 1),
    eos_token_id: Array.isArray(r.raw('eos_token_id')) ? (r.raw('eos_token_id') as number[]) : r.intOrNull('eos_token_id', 2),
    pad_token_id: r.intOrNull('pad_token_id', null),
  };
}


/** One line for `inspect`. */
export function describeLlamaConfig(t: Omit<LlamaConfig, 'model_type'> & { model_type: string }): string {
  const s = t.rope_scaling;
  const scaling = s ? ` (${s.rope_type}: factor ${s.factor}, low/high ${s.low_freq_factor}/${s.high_freq_factor}, context ${s.original_max_position_embeddings})` : '';
  return `${t.model_type}: hidden ${t.hidden_size}, ${t.num_hidden_layers} layers, ${t.num_attention_heads} heads (${t.num_key_value_heads} KV), MLP ${t.intermediate_size}, vocab ${t.vocab_size}, RoPE θ ${t.rope_theta}${scaling}, RMSNorm eps ${t.rms_norm_eps}`;
}
