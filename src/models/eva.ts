/**
 * EVA ViT-g vision tower of InstructBLIP — mirrors HF InstructBlipVisionModel
 * (modeling_instructblip.py):
 *   embeddings {patch_embedding (conv, stride = kernel, with bias), class_embedding
 *   [1, 1, d] and position_embedding [1, 1 + patches, d] as bare parameters} (no pre-norm)
 *   → encoder.layers[i] {layer_norm1, self_attn {qkv (fused), projection}, layer_norm2,
 *   mlp {fc1, fc2}} → post_layernorm
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/instructblip/modeling_instructblip.py
 *
 * The fused `qkv` weight [3d, d] holds q, k, v row blocks in that order; its bias is
 * [q_bias, 0, v_bias] (EVA's keys have no bias). It is split into three projections at
 * load time, so attention reads contiguous q, k, v. MLP activation: the config's
 * hidden_act ("gelu" = exact erf). Every layer runs; the Q-Former reads the output
 * after post_layernorm, CLS kept.
 *
 * Hook points ([pos, d_vision] f32, pos = 1 + patches, CLS first):
 *   vision.blocks.{l}.resid_pre    HF hidden_states[l] (0 = embeddings)
 *   vision.blocks.{l}.resid_mid    after the attention residual
 *   vision.blocks.{l}.resid_post   HF hidden_states[l + 1]
 *   vision.post_layernorm          last_hidden_state
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { InstructBlipVisionConfig } from '../io/config-instructblip.ts';
import { layerNormTensors, linearTensors, type ExpectedTensor } from '../io/expected-tensors.ts';
import { patchEmbed } from '../ops/patch-embed.ts';
import { LayerNorm } from './layer-norm.ts';
import { Linear } from './linear.ts';
import { vitEmbeddings, vitLayer } from './vit-layer.ts';
import type { Weights } from './weights.ts';

class InstructBlipVisionEmbeddings {
  constructor(
    readonly cfg: InstructBlipVisionConfig,
    readonly patchEmbedding: Linear,
    readonly classEmbedding: Tensor,
    readonly positionEmbedding: Tensor,
  ) {}

  static async load(w: Weights, cfg: InstructBlipVisionConfig): Promise<InstructBlipVisionEmbeddings> {
    const patch = new Linear(await w.get('patch_embedding.weight'), await w.getF32('patch_embedding.bias'));
    return new InstructBlipVisionEmbeddings(cfg, patch, await w.getF32('class_embedding'), await w.getF32('position_embedding'));
  }

  /** pixels [3, H, W] → [1 + patches, d]: CLS, then patches row by row, plus positions. */
  forward(gpu: Gpu, pixels: Tensor): Tensor {
    const p = this.patchEmbedding;
    const patches = patchEmbed(gpu, pixels, p.weight, { bias: p.bias, patchSize: this.cfg.patch_size });
    return vitEmbeddings(gpu, patches, this.classEmbedding, this.positionEmbedding);
  }
}

class InstructBlipEncoderLayer {
  constructor(
    readonly cfg: InstructBlipVisionConfig,
    readonly layerNorm1: LayerNorm,
    /** `self_attn.qkv` split into its q, k, v row blocks. */
    readonly qkv: [Linear, Linear, Linear],
    readonly projection: Linear,
    readonly layerNorm2: LayerNorm,
    readonly fc1: Linear,
    readonly fc2: Linear,
  ) {}

  static async load(w: Weights, cfg: InstructBlipVisionConfig): Promise<InstructBlipEncoderLayer> {
    const eps = cfg.layer_norm_eps;
    const a = w.pp('self_attn');
    const [q, k, v] = (await Linear.load(a.pp('qkv'))).split(w.gpu, 3);
    return new InstructBlipEncoderLayer(
      cfg,
      await LayerNorm.load(w.pp('layer_norm1'), eps),
      [q, k, v],
      await Linear.load(a.pp('projection')),
      await LayerNorm.load(w.pp('layer_norm2'), eps),
      await Linear.load(w.pp('mlp.fc1')),
      await Linear.load(w.pp('mlp.fc2')),
    );
  }

  forward(gpu: Gpu, h: Tensor, layer: number, hooks: HookPoints): Tensor {
    const { cfg } = this;
    return vitLayer(gpu, { ...this, heads: cfg.num_attention_heads, hiddenAct: cfg.hidden_act, outProj: this.projection }, h, layer, hooks);
  }
}

export class InstructBlipVisionModel {
  constructor(
    readonly cfg: InstructBlipVisionConfig,
    readonly hooks: HookPoints,
    readonly embeddings: InstructBlipVisionEmbeddings,
    readonly layers: InstructBlipEncoderLayer[],
    readonly postLayernorm: LayerNorm,
  ) {
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      for (const site of ['resid_pre', 'resid_mid', 'resid_post']) hooks.declare(actName(site, l, 'vision'), '[pos, d_vision]');
    }
    hooks.declare(actName('post_layernorm', undefined, 'vision'), '[pos, d_vision]');
  }

  /** w: weights under `vision_model`. */
  static async load(w: Weights, cfg: InstructBlipVisionConfig, hooks: HookPoints): Promise<InstructBlipVisionModel> {
    const layers: InstructBlipEncoderLayer[] = [];
    for (let l = 0; l < cfg.num_hidden_layers; l++) layers.push(await InstructBlipEncoderLayer.load(w.pp(`encoder.layers.${l}`), cfg));
    const post = await LayerNorm.load(w.pp('post_layernorm'), cfg.layer_norm_eps);
    return new InstructBlipVisionModel(cfg, hooks, await InstructBlipVisionEmbeddings.load(w.pp('embeddings'), cfg), layers, post);
  }

  /** pixels [3, H, W] → last_hidden_state [1 + patches, d] (post_layernorm applied). */
  forward(gpu: Gpu, pixels: Tensor): Tensor {
    let h = this.embeddings.forward(gpu, pixels);
    this.layers.forEach((layer, l) => {
      h = this.hooks.run(actName('resid_pre', l, 'vision'), h);
      const next = this.hooks.run(actName('resid_post', l, 'vision'), layer.forward(gpu, h, l, this.hooks));
      gpu.release(h);
      h = next;
    });
    const out = this.hooks.run(actName('post_layernorm', undefined, 'vision'), this.postLayernorm.forward(gpu, h));
    gpu.release(h);
    return out;
  }
}

/** Every tensor of InstructBlipVisionModel under `prefix` (HF stores EVA's q_bias / v_bias as `qkv.bias` = [q_bias, 0, v_bias]). */
export function evaVisionTensors(out: ExpectedTensor[], prefix: string, v: InstructBlipVisionConfig): void {
  const h = v.hidden_size;
  out.push(
    { name: `${prefix}.embeddings.class_embedding`, shape: [1, 1, h] },
    { name: `${prefix}.embeddings.patch_embedding.weight`, shape: [h, 3, v.patch_size, v.patch_size] },
    { name: `${prefix}.embeddings.patch_embedding.bias`, shape: [h] },
    { name: `${prefix}.embeddings.position_embedding`, shape: [1, (v.image_size / v.patch_size) ** 2 + 1, h] },
  );
  for (let i = 0; i < v.num_hidden_layers; i++) {
    const l = `${prefix}.encoder.layers.${i}`;
    linearTensors(out, `${l}.self_attn.qkv`, 3 * h, h, v.qkv_bias);
    linearTensors(out, `${l}.self_attn.projection`, h, h, true);
    layerNormTensors(out, `${l}.layer_norm1`, h);
    linearTensors(out, `${l}.mlp.fc1`, v.intermediate_size, h, true);
    linearTensors(out, `${l}.mlp.fc2`, h, v.intermediate_size, true);
    layerNormTensors(out, `${l}.layer_norm2`, h);
  }
  layerNormTensors(out, `${prefix}.post_layernorm`, h);
}
