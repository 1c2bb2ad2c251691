/**
 * The Q-Former of InstructBLIP — mirrors HF InstructBlipQFormerModel (modeling_instructblip.py),
 * a post-LN BERT whose first Q rows are learned query tokens:
 *   embeddings {word_embeddings + position_embeddings of the instruction (positions from 0);
 *   [query_tokens ; text] → layernorm} (queries get no position embedding)
 *   → encoder.layer[i] {attention (self, bidirectional over queries and text),
 *      crossattention (query rows only, keys/values from the vision output; when
 *      i % cross_attention_frequency == 0), intermediate_query/output_query (query rows),
 *      intermediate/output (text rows)}
 * No final norm. Only the Q query rows go on (through `language_projection`).
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/instructblip/modeling_instructblip.py
 *
 * Each attention block is BERT's: softmax(q kᵀ/√d) v, `output.dense`, then
 * `output.LayerNorm(dense + block input)`; each feed-forward `LayerNorm(dense(act(dense(x))) + x)`.
 * A single unpadded input needs no attention mask.
 *
 * Hook points (f32; pos = Q + T rows, queries first):
 *   qformer.embed                        [pos, d_q]   HF hidden_states[0] (after the embeddings LayerNorm)
 *   qformer.blocks.{l}.resid_pre         [pos, d_q]
 *   qformer.blocks.{l}.attn_out          [pos, d_q]   after self-attention and its LayerNorm
 *   qformer.blocks.{l}.cross_out         [Q, d_q]     query rows after cross-attention (cross layers only)
 *   qformer.blocks.{l}.resid_post        [pos, d_q]   HF hidden_states[l + 1]
 *   qformer.query_output                 [Q, d_q]
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { InstructBlipQFormerConfig } from '../io/config-instructblip.ts';
import { layerNormTensors, linearTensors, type ExpectedTensor } from '../io/expected-tensors.ts';
import { attention } from '../ops/attention.ts';
import { add } from '../ops/elementwise.ts';
import { embedding } from '../ops/embedding.ts';
import { LayerNorm } from './layer-norm.ts';
import { activationOf, Linear } from './linear.ts';
import type { Weights } from './weights.ts';

const n = (site: string, layer?: number) => actName(site, layer, 'qformer');

/** Rows [from, from + count) of x [S, d] as a new tensor. */
function rows(gpu: Gpu, x: Tensor, from: number, count: number, name: string): Tensor {
  const d = x.shape[1];
  const out = gpu.tensor([count, d], 'f32', name);
  gpu.copy(x, out, from * d, 0, count * d);
  return out;
}

class InstructBlipQFormerEmbeddings {
  constructor(
    readonly wordEmbeddings: Tensor,
    readonly positionEmbeddings: Tensor,
    readonly layernorm: LayerNorm,
  ) {}

  static async load(w: Weights, cfg: InstructBlipQFormerConfig): Promise<InstructBlipQFormerEmbeddings> {
    return new InstructBlipQFormerEmbeddings(
      await w.get('word_embeddings.weight'),
      await w.get('position_embeddings.weight'),
      await LayerNorm.load(w.pp('layernorm'), cfg.layer_norm_eps),
    );
  }

  /** LayerNorm([queryTokens [Q, d] ; word(ids) + position(0..T−1)]) → [Q + T, d]. */
  forward(gpu: Gpu, queryTokens: Tensor, ids: readonly number[]): Tensor {
    const [Q, d] = queryTokens.shape;
    const T = ids.length;
    const x = gpu.tensor([Q + T, d], 'f32', 'qformer.embed.tokens');
    gpu.copy(queryTokens, x, 0, 0, Q * d);
    if (T) {
      const idT = gpu.upload(Int32Array.from(ids), [T], 'qformer_input_ids');
      const posT = gpu.upload(Int32Array.from(ids, (_, i) => i), [T], 'qformer.position_ids');
      const words = embedding(gpu, idT, this.wordEmbeddings);
      const pos = embedding(gpu, posT, this.positionEmbeddings);
      const text = add(gpu, words, pos, { name: 'qformer.embed.text' });
      gpu.release(idT, posT);
      gpu.copy(text, x, 0, Q * d, T * d);
      gpu.release(words, pos, text);
    }
    const out = this.layernorm.forward(gpu, x, n('embed'));
    gpu.release(x);
    return out;
  }
}

/** BERT attention block: {query, key, value} → softmax → output.dense → LayerNorm(+ input). */
class InstructBlipQFormerAttention {
  constructor(
    readonly heads: number,
    readonly query: Linear,
    readonly key: Linear,
    readonly value: Linear,
    readonly dense: Linear,
    readonly layerNorm: LayerNorm,
  ) {}

  static async load(w: Weights, cfg: InstructBlipQFormerConfig): Promise<InstructBlipQFormerAttention> {
    const a = w.pp('attention');
    const o = w.pp('output');
    return new InstructBlipQFormerAttention(
      cfg.num_attention_heads,
      await Linear.load(a.pp('query')),
      await Linear.load(a.pp('key')),
      await Linear.load(a.pp('value')),
      await Linear.load(o.pp('dense')),
      await LayerNorm.load(o.pp('LayerNorm'), cfg.layer_norm_eps),
    );
  }

  /** x [Sq, d] attends to kv [Skv, d_kv] (kv = x for self-attention). */
  forward(gpu: Gpu, x: Tensor, kv: Tensor, name: string): Tensor {
    const q = this.query.forward(gpu, x);
    const k = this.key.forward(gpu, kv);
    const v = this.value.forward(gpu, kv);
    const z = attention(gpu, q, k, v, { causal: false, heads: this.heads });
    const y = this.dense.forward(gpu, z, { residual: x });
    const out = this.layerNorm.forward(gpu, y, name);
    gpu.release(q, k, v, z, y);
    return out;
  }
}

/** `intermediate{,_query}` + `output{,_query}`: LayerNorm(dense(act(dense(x))) + x). */
class InstructBlipQFormerFeedForward {
  constructor(
    readonly act: string,
    readonly intermediate: Linear,
    readonly output: Linear,
    readonly layerNorm: LayerNorm,
  ) {}

  static async load(w: Weights, cfg: InstructBlipQFormerConfig, intermediate: string, output: string): Promise<InstructBlipQFormerFeedForward> {
    return new InstructBlipQFormerFeedForward(
      cfg.hidden_act,
      await Linear.load(w.pp(`${intermediate}.dense`)),
      await Linear.load(w.pp(`${output}.dense`)),
      await LayerNorm.load(w.pp(`${output}.LayerNorm`), cfg.layer_norm_eps),
    );
  }

  forward(gpu: Gpu, x: Tensor): Tensor {
    const h = this.intermediate.forward(gpu, x, { act: activationOf(this.act) });
    const y = this.output.forward(gpu, h, { residual: x });
    const out = this.layerNorm.forward(gpu, y);
    gpu.release(h, y);
    return out;
  }
}

class InstructBlipQFormerLayer {
  constructor(
    readonly attention: InstructBlipQFormerAttention,
    readonly crossattention: InstructBlipQFormerAttention | null,
    readonly feedForwardQuery: InstructBlipQFormerFeedForward,
    readonly feedForward: InstructBlipQFormerFeedForward,
  ) {}

  static async load(w: Weights, cfg: InstructBlipQFormerConfig, layer: number): Promise<InstructBlipQFormerLayer> {
    const cross = layer % cfg.cross_attention_frequency === 0;
    return new InstructBlipQFormerLayer(
      await InstructBlipQFormerAttention.load(w.pp('attention'), cfg),
      cross ? await InstructBlipQFormerAttention.load(w.pp('crossattention'), cfg) : null,
      await InstructBlipQFormerFeedForward.load(w, cfg, 'intermediate_query', 'output_query'),
      await InstructBlipQFormerFeedForward.load(w, cfg, 'intermediate', 'output'),
    );
  }

  /** h [Q + T, d] → [Q + T, d]; image [1 + patches, d_vision] feeds the query rows' cross-attention. */
  forward(gpu: Gpu, h: Tensor, Q: number, image: Tensor, layer: number, hooks: HookPoints): Tensor {
    const [S, d] = h.shape;
    const a = hooks.run(n('attn_out', layer), this.attention.forward(gpu, h, h, `qformer.blocks.${layer}.attn_out`));
    let queries = rows(gpu, a, 0, Q, `qformer.blocks.${layer}.queries`);
    if (this.crossattention) {
      const c = hooks.run(n('cross_out', layer), this.crossattention.forward(gpu, queries, image, `qformer.blocks.${layer}.cross_out`));
      gpu.release(queries);
      queries = c;
    }
    const out = gpu.tensor([S, d], 'f32', `qformer.blocks.${layer}.out`);
    const qOut = this.feedForwardQuery.forward(gpu, queries);
    gpu.copy(qOut, out, 0, 0, Q * d);
    gpu.release(queries, qOut);
    if (S > Q) {
      const text = rows(gpu, a, Q, S - Q, `qformer.blocks.${layer}.text`);
      const tOut = this.feedForward.forward(gpu, text);
      gpu.copy(tOut, out, 0, Q * d, (S - Q) * d);
      gpu.release(text, tOut);
    }
    gpu.release(a);
    return out;
  }
}

export class InstructBlipQFormerModel {
  constructor(
    readonly cfg: InstructBlipQFormerConfig,
    readonly hooks: HookPoints,
    readonly embeddings: InstructBlipQFormerEmbeddings,
    readonly layers: InstructBlipQFormerLayer[],
  ) {
    hooks.declare(n('embed'), '[pos, d_q]');
    layers.forEach((layer, l) => {
      hooks.declare(n('resid_pre', l), '[pos, d_q]');
      hooks.declare(n('attn_out', l), '[pos, d_q]');
      if (layer.crossattention) hooks.declare(n('cross_out', l), '[n_query, d_q]');
      hooks.declare(n('resid_post', l), '[pos, d_q]');
    });
    hooks.declare(n('query_output'), '[n_query, d_q]');
  }

  /** w: weights under `qformer`. */
  static async load(w: Weights, cfg: InstructBlipQFormerConfig, hooks: HookPoints): Promise<InstructBlipQFormerModel> {
    const layers: InstructBlipQFormerLayer[] = [];
    for (let l = 0; l < cfg.num_hidden_layers; l++) layers.push(await InstructBlipQFormerLayer.load(w.pp(`encoder.layer.${l}`), cfg, l));
    return new InstructBlipQFormerModel(cfg, hooks, await InstructBlipQFormerEmbeddings.load(w.pp('embeddings'), cfg), layers);
  }

  /** queryTokens [Q, d_q], instruction ids [T], image [1 + patches, d_vision] → query_output [Q, d_q]. */
  forward(gpu: Gpu, queryTokens: Tensor, ids: readonly number[], image: Tensor): Tensor {
    const Q = queryTokens.shape[0];
    let h = this.hooks.run(n('embed'), this.embeddings.forward(gpu, queryTokens, ids));
    this.layers.forEach((layer, l) => {
      h = this.hooks.run(n('resid_pre', l), h);
      const next = this.hooks.run(n('resid_post', l), layer.forward(gpu, h, Q, image, l, this.hooks));
      gpu.release(h);
      h = next;
    });
    const out = this.hooks.run(n('query_output'), rows(gpu, h, 0, Q, 'qformer.query_output'));
    gpu.release(h);
    return out;
  }
}

/** Every tensor of InstructBlipQFormerModel under `prefix` (the query tokens live in the composition). */
export function qformerTensors(out: ExpectedTensor[], prefix: string, q: InstructBlipQFormerConfig): void {
  const qh = q.hidden_size;
  out.push(
    { name: `${prefix}.embeddings.word_embeddings.weight`, shape: [q.vocab_size, qh] },
    { name: `${prefix}.embeddings.position_embeddings.weight`, shape: [q.max_position_embeddings, qh] },
  );
  layerNormTensors(out, `${prefix}.embeddings.layernorm`, qh);
  const attention = (at: string, kvIn: number) => {
    linearTensors(out, `${at}.attention.query`, qh, qh, true);
    linearTensors(out, `${at}.attention.key`, qh, kvIn, true);
    linearTensors(out, `${at}.attention.value`, qh, kvIn, true);
    linearTensors(out, `${at}.output.dense`, qh, qh, true);
    layerNormTensors(out, `${at}.output.LayerNorm`, qh);
  };
  for (let i = 0; i < q.num_hidden_layers; i++) {
    const l = `${prefix}.encoder.layer.${i}`;
    attention(`${l}.attention`, qh);
    if (i % q.cross_attention_frequency === 0) attention(`${l}.crossattention`, q.encoder_hidden_size);
    // text tokens (the instruction) and query tokens have separate feed-forwards
    for (const [inter, output] of [['intermediate', 'output'], ['intermediate_query', 'output_query']]) {
      linearTensors(out, `${l}.${inter}.dense`, q.intermediate_size, qh, true);
      linearTensors(out, `${l}.${output}.dense`, qh, q.intermediate_size, true);
      layerNormTensors(out, `${l}.${output}.LayerNorm`, qh);
    }
  }
}
