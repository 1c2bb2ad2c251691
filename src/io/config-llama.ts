/**
 * LlamaConfig (configuration_llama.py): the language model of LLaVA-1.5 and InstructBLIP
 * (Vicuna). Defaults are LLaMA-7B's, as `from_pretrained` fills them in.
 */
import { ACTIVATIONS, divisible, MAX, type LmConfig, type Reader } from './config.ts';

/** LlamaConfig (the fields inference needs). */
export interface LlamaConfig extends LmConfig {
  model_type: 'llama';
  intermediate_size: number;
  hidden_act: string;
  rms_norm_eps: number;
  rope_theta: number;
  attention_bias: boolean;
  mlp_bias: boolean;
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
export function parseLlama(r: Reader, outerVocab?: number): LlamaConfig {
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


/** One line for `inspect`. */
export function describeLlamaConfig(t: LlamaConfig): string {
  return `llama: hidden ${t.hidden_size}, ${t.num_hidden_layers} layers, ${t.num_attention_heads} heads (${t.num_key_value_heads} KV), MLP ${t.intermediate_size}, vocab ${t.vocab_size}, RoPE θ ${t.rope_theta}, RMSNorm eps ${t.rms_norm_eps}`;
}
