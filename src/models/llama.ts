/**
 * LLaMA decoder with lm_head — mirrors HF LlamaForCausalLM (modeling_llama.py):
 *   model.embed_tokens → model.layers[i] {input_layernorm, self_attn {q,k,v,o}_proj,
 *   post_attention_layernorm, mlp {gate,up,down}_proj} → model.norm → lm_head
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/llama/modeling_llama.py
 * Llama-3 is this model with `rope_theta` 500000 and `rope_type` "llama3" (the RoPE table
 * of src/ops/rope.ts); Mistral is this module tree with a sliding window (models/mistral.ts).
 *
 * Records dispatches only; no arithmetic in JavaScript. Hook points (all [pos, …] f32):
 *   lm.embed                       [pos, d_model]   inputs_embeds (the composition runs it,
 *                                                   after the image features are spliced in)
 *   lm.blocks.{l}.resid_pre        [pos, d_model]   HF hidden_states[l]
 *   lm.blocks.{l}.ln1.normalized   [pos, d_model]   input of self-attention
 *   lm.blocks.{l}.attn.q / .k      [pos, n_heads | n_kv_heads, d_head] after RoPE
 *   lm.blocks.{l}.attn.v           [pos, n_kv_heads, d_head]
 *   lm.blocks.{l}.attn.z           [pos, n_heads · d_head]   before o_proj
 *   lm.blocks.{l}.resid_mid        [pos, d_model]
 *   lm.blocks.{l}.resid_post       [pos, d_model]   HF hidden_states[l + 1] (un-normed for the last)
 *   lm.ln_final.normalized         [pos, d_model]   HF hidden_states[L] (final norm applied)
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { view } from '../ops/common.ts';
import type { LlamaLikeConfig } from '../io/config-mistral.ts';
import { linearTensors, type ExpectedTensor } from '../io/expected-tensors.ts';
import { attention } from '../ops/attention.ts';
import { siluMul } from '../ops/elementwise.ts';
import { embedding, type EmbeddingPart } from '../ops/embedding.ts';
import { GEMV_MAX_ROWS, linear } from '../ops/linear.ts';
import { rmsNorm } from '../ops/rmsnorm.ts';
import { ropeQk, ropeTable, type RopeTable } from '../ops/rope.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import { Linear } from './linear.ts';
import type { DecoderForwardOptions, DecoderLm, KvCache, LogitsBlock, NormAttentionLayer } from './vlm.ts';
import type { Weights } from './weights.ts';

export class LlamaRMSNorm {
  constructor(
    readonly weight: Tensor,
    readonly eps: number,
  ) {}

  forward(gpu: Gpu, x: Tensor): Tensor {
    return rmsNorm(gpu, x, this.weight, this.eps);
  }
}

/** Per-layer K/V [maxSeq, n_kv_heads · d_head] (f32) kept on the GPU between decode steps. */
function kvCache(gpu: Gpu, cfg: LlamaLikeConfig, maxSeq: number): KvCache {
  const width = cfg.num_key_value_heads * cfg.head_dim;
  const mk = (kind: string) => Array.from({ length: cfg.num_hidden_layers }, (_, l) => gpu.tensor([maxSeq, width], 'f32', `kv_cache.${l}.${kind}`));
  return { k: mk('k'), v: mk('v'), maxSeq, length: 0 };
}

export class LlamaAttention {
  constructor(
    readonly cfg: LlamaLikeConfig,
    readonly qProj: Linear,
    readonly kProj: Linear,
    readonly vProj: Linear,
    readonly oProj: Linear,
  ) {}

  static async load(w: Weights, cfg: LlamaLikeConfig): Promise<LlamaAttention> {
    const b = cfg.attention_bias;
    return new LlamaAttention(cfg, await Linear.load(w.pp('q_proj'), b), await Linear.load(w.pp('k_proj'), b), await Linear.load(w.pp('v_proj'), b), await Linear.load(w.pp('o_proj'), b));
  }

  /** q [S, H, D] and k [S, Hkv, D] before the position encoding (Chameleon normalises them here). */
  protected projectQK(gpu: Gpu, x: Tensor, ctx: LayerContext): { q: Tensor; k: Tensor } {
    const { cfg } = this;
    const S = x.shape[0];
    const n = (site: string) => actName(site, ctx.layer);
    return {
      q: view(this.qProj.forward(gpu, x, { name: n('attn.q') }), [S, cfg.num_attention_heads, cfg.head_dim]),
      k: view(this.kProj.forward(gpu, x, { name: n('attn.k') }), [S, cfg.num_key_value_heads, cfg.head_dim]),
    };
  }

  /** x: normed input [S, d]; residual [S, d]; returns residual + o_proj(attn) (o_proj(attn) without one). */
  forward(gpu: Gpu, x: Tensor, residual: Tensor | undefined, ctx: LayerContext): Tensor {
    const { cfg } = this;
    const S = x.shape[0];
    const Hkv = cfg.num_key_value_heads;
    const D = cfg.head_dim;
    const n = (site: string) => actName(site, ctx.layer);
    let { q, k } = this.projectQK(gpu, x, ctx);
    let v = this.vProj.forward(gpu, x, { name: n('attn.v') });
    ropeQk(gpu, q, k, ctx.rope, ctx.pos0);
    q = ctx.hooks.run(n('attn.q'), q);
    k = ctx.hooks.run(n('attn.k'), k);
    v = ctx.hooks.run(n('attn.v'), view(v, [S, Hkv, D]));
    let kAll = k;
    let vAll = v;
    if (ctx.cache) {
      const c = ctx.cache;
      const width = Hkv * D;
      gpu.copy(k, c.k[ctx.layer], 0, ctx.pos0 * width);
      gpu.copy(v, c.v[ctx.layer], 0, ctx.pos0 * width);
      kAll = view(c.k[ctx.layer], [c.maxSeq, Hkv, D]);
      vAll = view(c.v[ctx.layer], [c.maxSeq, Hkv, D]);
    }
    let z = attention(gpu, q, kAll, vAll, { causal: true, qPos0: ctx.pos0, kvLen: ctx.pos0 + S, mask: ctx.mask?.(ctx.layer), name: n('attn.z') });
    z = ctx.hooks.run(n('attn.z'), z);
    const out = this.oProj.forward(gpu, z, { residual, name: n('resid_mid') });
    gpu.release(q, k, v, z);
    return out;
  }
}

export class LlamaMLP {
  constructor(
    readonly gateProj: Linear,
    readonly upProj: Linear,
    readonly downProj: Linear,
  ) {}

  static async load(w: Weights, cfg: LlamaLikeConfig): Promise<LlamaMLP> {
    const b = cfg.mlp_bias;
    return new LlamaMLP(await Linear.load(w.pp('gate_proj'), b), await Linear.load(w.pp('up_proj'), b), await Linear.load(w.pp('down_proj'), b));
  }

  /** down_proj(silu(gate_proj(x)) · up_proj(x)) + residual (when given) */
  forward(gpu: Gpu, x: Tensor, residual: Tensor | undefined, name?: string): Tensor {
    const gate = this.gateProj.forward(gpu, x);
    const up = this.upProj.forward(gpu, x);
    // decoding: silu(gate) · up is formed in down_proj's loads, one pass fewer per layer
    // (longer inputs would recompute it for every block of down_proj's columns)
    if (x.numel / x.shape[x.shape.length - 1] <= GEMV_MAX_ROWS) {
      const out = this.downProj.forward(gpu, gate, { residual, name, up });
      gpu.release(gate, up);
      return out;
    }
    const act = siluMul(gpu, gate, up);
    const out = this.downProj.forward(gpu, act, { residual, name });
    gpu.release(gate, up, act);
    return out;
  }
}

export interface LayerContext {
  layer: number;
  pos0: number;
  rope: RopeTable;
  hooks: HookPoints;
  cache?: KvCache;
  /** Additive attention mask [S, S_kv] for a layer (attention knockout), if any. */
  mask?: (layer: number) => Tensor | undefined;
}

/** What the decoder loop needs of a layer (LLaMA's, Chameleon's). */
export interface DecoderLayer {
  readonly selfAttn: { readonly oProj: Linear };
  forward(gpu: Gpu, h: Tensor, ctx: LayerContext): Tensor;
}

class LlamaDecoderLayer implements DecoderLayer {
  constructor(
    readonly inputLayernorm: LlamaRMSNorm,
    readonly selfAttn: LlamaAttention,
    readonly postAttentionLayernorm: LlamaRMSNorm,
    readonly mlp: LlamaMLP,
  ) {}

  static async load(w: Weights, cfg: LlamaLikeConfig): Promise<LlamaDecoderLayer> {
    const eps = cfg.rms_norm_eps;
    return new LlamaDecoderLayer(
      new LlamaRMSNorm(await w.get('input_layernorm.weight'), eps),
      await LlamaAttention.load(w.pp('self_attn'), cfg),
      new LlamaRMSNorm(await w.get('post_attention_layernorm.weight'), eps),
      await LlamaMLP.load(w.pp('mlp'), cfg),
    );
  }

  forward(gpu: Gpu, h: Tensor, ctx: LayerContext): Tensor {
    const n = (site: string) => actName(site, ctx.layer);
    const x = ctx.hooks.run(n('ln1.normalized'), this.inputLayernorm.forward(gpu, h));
    const mid = ctx.hooks.run(n('resid_mid'), this.selfAttn.forward(gpu, x, h, ctx));
    const x2 = this.postAttentionLayernorm.forward(gpu, mid);
    const out = this.mlp.forward(gpu, x2, mid, n('resid_post'));
    gpu.release(x, mid, x2);
    return out;
  }
}

export class LlamaForCausalLM implements DecoderLm {
  private ropeTable?: RopeTable;

  constructor(
    readonly cfg: LlamaLikeConfig,
    readonly hooks: HookPoints,
    readonly embedTokens: EmbeddingPart[],
    readonly layers: DecoderLayer[],
    readonly norm: LlamaRMSNorm,
    /** lm_head rows, split where the vocabulary exceeds one storage binding. */
    readonly lmHead: EmbeddingPart[],
  ) {
    const L = cfg.num_hidden_layers;
    hooks.declare(actName('embed'), '[pos, d_model]');
    for (let l = 0; l < L; l++) {
      this.hooks.declare(actName('resid_pre', l), '[pos, d_model]');
      this.hooks.declare(actName('ln1.normalized', l), '[pos, d_model]');
      this.hooks.declare(actName('attn.q', l), '[pos, n_heads, d_head]');
      this.hooks.declare(actName('attn.k', l), '[pos, n_kv_heads, d_head]');
      this.hooks.declare(actName('attn.v', l), '[pos, n_kv_heads, d_head]');
      this.hooks.declare(actName('attn.z', l), '[pos, n_heads * d_head]');
      this.hooks.declare(actName('resid_mid', l), '[pos, d_model]');
      this.hooks.declare(actName('resid_post', l), '[pos, d_model]');
    }
    this.hooks.declare(actName('ln_final.normalized'), '[pos, d_model]');
  }

  /** w: weights under the LlamaForCausalLM root (e.g. `language_model`); `this` builds a subclass (MistralForCausalLM). */
  static async load<T>(this: new (...a: ConstructorParameters<typeof LlamaForCausalLM>) => T, w: Weights, cfg: LlamaLikeConfig, hooks: HookPoints): Promise<T> {
    const m = w.pp('model');
    const embed = await m.getSplit('embed_tokens.weight');
    const layers: LlamaDecoderLayer[] = [];
    for (let l = 0; l < cfg.num_hidden_layers; l++) layers.push(await LlamaDecoderLayer.load(m.pp(`layers.${l}`), cfg));
    const norm = new LlamaRMSNorm(await m.get('norm.weight'), cfg.rms_norm_eps);
    const head = cfg.tie_word_embeddings && !w.has('lm_head.weight') ? embed : await w.getSplit('lm_head.weight');
    return new this(cfg, hooks, embed, layers, norm, head);
  }

  /** Token embeddings [n, d_model] of ids [n] (i32). */
  embed(gpu: Gpu, ids: Tensor): Tensor {
    return embedding(gpu, ids, this.embedTokens, { name: 'lm.embed' });
  }

  /**
   * Runs the decoder on input embeddings [S, d_model] (HF `inputs_embeds`); returns the
   * final-normed hidden states [S, d_model]. The un-normed output of the last layer is the
   * hook `lm.blocks.{L-1}.resid_post`.
   */
  forward(gpu: Gpu, inputsEmbeds: Tensor, opts: DecoderForwardOptions = {}): Tensor {
    const pos0 = opts.pos0 ?? 0;
    const S = inputsEmbeds.shape[0];
    if (pos0 + S > this.cfg.max_position_embeddings) {
      throw new RangeError(`sequence of ${pos0 + S} positions exceeds max_position_embeddings = ${this.cfg.max_position_embeddings}`);
    }
    if (opts.cache && pos0 + S > opts.cache.maxSeq) throw new RangeError(`KV cache holds ${opts.cache.maxSeq} positions, need ${pos0 + S}`);
    const sc = this.cfg.rope_scaling;
    const scaling = sc && { type: sc.rope_type, factor: sc.factor, lowFreqFactor: sc.low_freq_factor, highFreqFactor: sc.high_freq_factor, originalMaxPositionEmbeddings: sc.original_max_position_embeddings };
    this.ropeTable ??= ropeTable(gpu, { headDim: this.cfg.head_dim, maxPos: this.cfg.max_position_embeddings, theta: this.cfg.rope_theta, scaling });
    let h = inputsEmbeds;
    const from = opts.fromLayer ?? 0;
    if (from < 0 || from >= this.layers.length) throw new RangeError(`fromLayer ${from}: expected 0..${this.layers.length - 1}`);
    this.layers.forEach((layer, l) => {
      if (l < from) return;
      h = this.hooks.run(actName('resid_pre', l), h);
      const ctx: LayerContext = { layer: l, pos0, rope: this.ropeTable!, hooks: this.hooks, cache: opts.cache, mask: opts.mask };
      const next = this.hooks.run(actName('resid_post', l), layer.forward(gpu, h, ctx));
      if (h !== inputsEmbeds) gpu.release(h);
      h = next;
    });
    if (opts.cache) opts.cache.length = pos0 + S;
    const out = this.hooks.run(actName('ln_final.normalized'), this.norm.forward(gpu, h));
    if (h !== inputsEmbeds) gpu.release(h);
    return out;
  }

  finalNorm(gpu: Gpu, x: Tensor): Tensor {
    return this.norm.forward(gpu, x);
  }

  /** lm_head: logits [S, vocab] as column blocks (one per lm_head part). */
  logits(gpu: Gpu, hidden: Tensor): LogitsBlock[] {
    return this.lmHead.map((p) => ({ tensor: linear(gpu, hidden, p.tensor, { name: `logits[${p.rowStart}:]` }), colStart: p.rowStart }));
  }

  /** LLaMA attends causally over the whole context. */
  normAttention(layer: number): NormAttentionLayer {
    return { oProj: this.layers[layer].selfAttn.oProj.weight, window: null };
  }

  createCache(gpu: Gpu, maxSeq: number): KvCache {
    return kvCache(gpu, this.cfg, maxSeq);
  }
}

/** LlamaForCausalLM under `prefix` (e.g. `language_model`). */
export function llamaTensors(out: ExpectedTensor[], prefix: string, c: LlamaLikeConfig): void {
  const h = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  out.push({ name: `${prefix}.model.embed_tokens.weight`, shape: [c.vocab_size, h] });
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${prefix}.model.layers.${i}`;
    out.push({ name: `${l}.input_layernorm.weight`, shape: [h] });
    linearTensors(out, `${l}.self_attn.q_proj`, q, h, c.attention_bias);
    linearTensors(out, `${l}.self_attn.k_proj`, kv, h, c.attention_bias);
    linearTensors(out, `${l}.self_attn.v_proj`, kv, h, c.attention_bias);
    linearTensors(out, `${l}.self_attn.o_proj`, h, q, c.attention_bias);
    out.push({ name: `${l}.post_attention_layernorm.weight`, shape: [h] });
    linearTensors(out, `${l}.mlp.gate_proj`, c.intermediate_size, h, c.mlp_bias);
    linearTensors(out, `${l}.mlp.up_proj`, c.intermediate_size, h, c.mlp_bias);
    linearTensors(out, `${l}.mlp.down_proj`, h, c.intermediate_size, c.mlp_bias);
  }
  out.push({ name: `${prefix}.model.norm.weight`, shape: [h] });
  out.push({ name: `${prefix}.lm_head.weight`, shape: [c.vocab_size, h], optional: c.tie_word_embeddings });
}

