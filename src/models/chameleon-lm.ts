/**
 * Chameleon's language model — mirrors HF ChameleonModel's decoder + lm_head
 * (modeling_chameleon.py): LLaMA's module tree (models/llama.ts) with two differences.
 * - ChameleonAttention: q and k are layer-normed per head before RoPE (ChameleonLayerNorm:
 *   statistics over head_dim only, eps 1e-5, then weight and bias [heads, head_dim] — each
 *   head its own, in the order the rows come out of q_proj / k_proj as HF's converter
 *   permuted them for the rotate-half layout).
 * - `swin_norm` (ChameleonSwinDecoderLayer): no norm before attention and MLP; their
 *   outputs are normed instead: h + input_layernorm(attn(h)), then
 *   m + post_attention_layernorm(mlp(m)).
 * And ChameleonForConditionalGeneration's logits set every image-token column (the
 * vocabulary_map's IMGIMG ids) to the float minimum, so text generation never emits one:
 * here through a bias row added by lm_head's matmul (x·w − FLT_MAX rounds to −FLT_MAX for
 * any |x·w| < 1e31).
 * Hook points: LLaMA's (`lm.blocks.{l}.ln1.normalized` is the attention's input: the
 * residual itself with swin_norm); q and k after the norm and RoPE.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { ChameleonTextConfig } from '../io/config-chameleon.ts';
import type { LlamaConfig } from '../io/config-llama.ts';
import type { ExpectedTensor } from '../io/expected-tensors.ts';
import { layerNorm } from '../ops/layernorm.ts';
import { linear } from '../ops/linear.ts';
import { add } from '../ops/elementwise.ts';
import { Linear } from './linear.ts';
import { LlamaAttention, LlamaForCausalLM, LlamaMLP, LlamaRMSNorm, llamaTensors, type DecoderLayer, type LayerContext } from './llama.ts';
import type { LogitsBlock } from './vlm.ts';
import type { Weights } from './weights.ts';

const QK_NORM_EPS = 1e-5;
const FLT_MIN = -3.4028234663852886e38;

/** The LLaMA module tree's view of the config (the same fields; plain RoPE). */
function asLlama(c: ChameleonTextConfig): LlamaConfig {
  return { ...c, model_type: 'llama', rope_scaling: null };
}

/** ChameleonLayerNorm: per-head LayerNorm of [S, heads, head_dim] with [heads, head_dim] parameters. */
class ChameleonLayerNorm {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(w: Weights): Promise<ChameleonLayerNorm> {
    return new ChameleonLayerNorm(await w.get('weight'), await w.get('bias'));
  }

  forward(gpu: Gpu, x: Tensor): Tensor {
    const y = layerNorm(gpu, x, this.weight, this.bias, QK_NORM_EPS, { name: `${x.name}.normed` });
    gpu.release(x);
    return y;
  }
}

class ChameleonAttention extends LlamaAttention {
  qNorm!: ChameleonLayerNorm;
  kNorm!: ChameleonLayerNorm;

  static async loadChameleon(w: Weights, cfg: ChameleonTextConfig): Promise<ChameleonAttention> {
    const b = cfg.attention_bias;
    const a = new ChameleonAttention(asLlama(cfg), await Linear.load(w.pp('q_proj'), b), await Linear.load(w.pp('k_proj'), b), await Linear.load(w.pp('v_proj'), b), await Linear.load(w.pp('o_proj'), b));
    a.qNorm = await ChameleonLayerNorm.load(w.pp('q_norm'));
    a.kNorm = await ChameleonLayerNorm.load(w.pp('k_norm'));
    return a;
  }

  protected override projectQK(gpu: Gpu, x: Tensor, ctx: LayerContext): { q: Tensor; k: Tensor } {
    const { q, k } = super.projectQK(gpu, x, ctx);
    return { q: this.qNorm.forward(gpu, q), k: this.kNorm.forward(gpu, k) };
  }
}

class ChameleonDecoderLayer implements DecoderLayer {
  constructor(
    readonly inputLayernorm: LlamaRMSNorm,
    readonly selfAttn: ChameleonAttention,
    readonly postAttentionLayernorm: LlamaRMSNorm,
    readonly mlp: LlamaMLP,
    readonly swin: boolean,
  ) {}

  static async load(w: Weights, cfg: ChameleonTextConfig): Promise<ChameleonDecoderLayer> {
    const eps = cfg.rms_norm_eps;
    return new ChameleonDecoderLayer(
      new LlamaRMSNorm(await w.get('input_layernorm.weight'), eps),
      await ChameleonAttention.loadChameleon(w.pp('self_attn'), cfg),
      new LlamaRMSNorm(await w.get('post_attention_layernorm.weight'), eps),
      await LlamaMLP.load(w.pp('mlp'), asLlama(cfg)),
      cfg.swin_norm,
    );
  }

  forward(gpu: Gpu, h: Tensor, ctx: LayerContext): Tensor {
    const n = (site: string) => actName(site, ctx.layer);
    if (!this.swin) {
      const x = ctx.hooks.run(n('ln1.normalized'), this.inputLayernorm.forward(gpu, h));
      const mid = ctx.hooks.run(n('resid_mid'), this.selfAttn.forward(gpu, x, h, ctx));
      const x2 = this.postAttentionLayernorm.forward(gpu, mid);
      const out = this.mlp.forward(gpu, x2, mid, n('resid_post'));
      gpu.release(x, mid, x2);
      return out;
    }
    const x = ctx.hooks.run(n('ln1.normalized'), h);
    const a = this.selfAttn.forward(gpu, x, undefined, ctx);
    const an = this.inputLayernorm.forward(gpu, a);
    const mid = ctx.hooks.run(n('resid_mid'), add(gpu, h, an, { name: n('resid_mid') }));
    const f = this.mlp.forward(gpu, mid, undefined);
    const fn = this.postAttentionLayernorm.forward(gpu, f);
    const out = add(gpu, mid, fn, { name: n('resid_post') });
    if (x !== h) gpu.release(x);
    gpu.release(a, an, mid, f, fn);
    return out;
  }
}

export class ChameleonForCausalLM extends LlamaForCausalLM {
  /** Per lm_head part: −FLT_MAX at the image-token columns, 0 elsewhere. */
  private mask?: Tensor[];
  imageTokenIds: readonly number[] = [];

  /** w: the ChameleonForConditionalGeneration root (`model.*`, `lm_head`). */
  static async loadChameleon(w: Weights, cfg: ChameleonTextConfig, imageTokenIds: readonly number[], hooks: HookPoints): Promise<ChameleonForCausalLM> {
    const m = w.pp('model');
    const embed = await m.getSplit('embed_tokens.weight');
    const layers: DecoderLayer[] = [];
    for (let l = 0; l < cfg.num_hidden_layers; l++) layers.push(await ChameleonDecoderLayer.load(m.pp(`layers.${l}`), cfg));
    const norm = new LlamaRMSNorm(await m.get('norm.weight'), cfg.rms_norm_eps);
    const head = cfg.tie_word_embeddings && !w.has('lm_head.weight') ? embed : await w.getSplit('lm_head.weight');
    const lm = new ChameleonForCausalLM(asLlama(cfg), hooks, embed, layers, norm, head);
    lm.imageTokenIds = imageTokenIds;
    return lm;
  }

  override logits(gpu: Gpu, hidden: Tensor): LogitsBlock[] {
    this.mask ??= this.lmHead.map((p) => {
      const rows = p.tensor.shape[0];
      const bias = new Float32Array(rows);
      for (const id of this.imageTokenIds) if (id >= p.rowStart && id < p.rowStart + rows) bias[id - p.rowStart] = FLT_MIN;
      return gpu.upload(bias, [rows], `image_token_mask[${p.rowStart}:]`);
    });
    return this.lmHead.map((p, i) => ({ tensor: linear(gpu, hidden, p.tensor, { bias: this.mask![i], name: `logits[${p.rowStart}:]` }), colStart: p.rowStart }));
  }
}

/** The language model's tensors of a ChameleonForConditionalGeneration: LLaMA's plus q_norm / k_norm [heads, head_dim]. */
export function chameleonLmTensors(out: ExpectedTensor[], c: ChameleonTextConfig): void {
  const lm: ExpectedTensor[] = [];
  llamaTensors(lm, '', asLlama(c));
  for (const t of lm) {
    // llamaTensors writes `.model.…` / `.lm_head…` under the empty prefix
    const name = t.name.slice(1);
    out.push({ ...t, name });
    const m = name.match(/^(model\.layers\.\d+\.self_attn)\.o_proj\.weight$/);
    if (!m) continue;
    for (const [norm, heads] of [['q_norm', c.num_attention_heads], ['k_norm', c.num_key_value_heads]] as const) {
      out.push({ name: `${m[1]}.${norm}.weight`, shape: [heads, c.head_dim] }, { name: `${m[1]}.${norm}.bias`, shape: [heads, c.head_dim] });
    }
  }
}
