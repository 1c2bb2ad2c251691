/**
 * CLIP vision tower — mirrors HF CLIPVisionTransformer (modeling_clip.py):
 *   embeddings {patch_embedding (conv, stride = kernel, no bias), class_embedding,
 *   position_embedding} → pre_layrnorm → encoder.layers[i] {layer_norm1, self_attn
 *   {q,k,v,out}_proj, layer_norm2, mlp {fc1, fc2}} → post_layernorm
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/clip/modeling_clip.py
 *
 * Hook points ([pos, d] f32, pos = 1 + patches, CLS first):
 *   vision.blocks.{l}.resid_pre    HF hidden_states[l] (0 = after pre_layrnorm)
 *   vision.blocks.{l}.resid_post   HF hidden_states[l + 1]
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { ClipVisionConfig } from '../io/config-llava.ts';
import { layerNormTensors, linearTensors, type ExpectedTensor } from '../io/expected-tensors.ts';
import { patchEmbed } from '../ops/patch-embed.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import { LayerNorm } from './layer-norm.ts';
import { Linear } from './linear.ts';
import { vitEmbeddings, vitLayer } from './vit-layer.ts';
import type { Weights } from './weights.ts';

/** The direct children of CLIPVisionTransformer (modeling_clip.py). */
export const CLIP_VISION_CHILDREN = ['embeddings', 'pre_layrnorm', 'encoder', 'post_layernorm'];

class CLIPVisionEmbeddings {
  constructor(
    readonly cfg: ClipVisionConfig,
    readonly patchEmbedding: Tensor,
    readonly classEmbedding: Tensor,
    readonly positionEmbedding: Tensor,
  ) {}

  static async load(w: Weights, cfg: ClipVisionConfig): Promise<CLIPVisionEmbeddings> {
    return new CLIPVisionEmbeddings(cfg, await w.get('patch_embedding.weight'), await w.getF32('class_embedding'), await w.getF32('position_embedding.weight'));
  }

  /** pixels [3, H, W] → [1 + patches, d]: CLS, then patches row by row, plus positions. */
  forward(gpu: Gpu, pixels: Tensor): Tensor {
    const { cfg } = this;
    const patches = patchEmbed(gpu, pixels, this.patchEmbedding, { patchSize: cfg.patch_size });
    return vitEmbeddings(gpu, patches, this.classEmbedding, this.positionEmbedding);
  }
}

class CLIPEncoderLayer {
  constructor(
    readonly cfg: ClipVisionConfig,
    readonly layerNorm1: LayerNorm,
    readonly qProj: Linear,
    readonly kProj: Linear,
    readonly vProj: Linear,
    readonly outProj: Linear,
    readonly layerNorm2: LayerNorm,
    readonly fc1: Linear,
    readonly fc2: Linear,
  ) {}

  static async load(w: Weights, cfg: ClipVisionConfig): Promise<CLIPEncoderLayer> {
    const eps = cfg.layer_norm_eps;
    const a = w.pp('self_attn');
    return new CLIPEncoderLayer(
      cfg,
      await LayerNorm.load(w.pp('layer_norm1'), eps),
      await Linear.load(a.pp('q_proj')),
      await Linear.load(a.pp('k_proj')),
      await Linear.load(a.pp('v_proj')),
      await Linear.load(a.pp('out_proj')),
      await LayerNorm.load(w.pp('layer_norm2'), eps),
      await Linear.load(w.pp('mlp.fc1')),
      await Linear.load(w.pp('mlp.fc2')),
    );
  }

  forward(gpu: Gpu, h: Tensor, layer: number, hooks: HookPoints): Tensor {
    const { cfg } = this;
    return vitLayer(gpu, { ...this, heads: cfg.num_attention_heads, hiddenAct: cfg.hidden_act, qkv: [this.qProj, this.kProj, this.vProj] }, h, layer, hooks);
  }
}

export class CLIPVisionTransformer {
  constructor(
    readonly cfg: ClipVisionConfig,
    readonly hooks: HookPoints,
    readonly embeddings: CLIPVisionEmbeddings,
    readonly preLayrnorm: LayerNorm,
    readonly layers: CLIPEncoderLayer[],
  ) {
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      this.hooks.declare(actName('resid_pre', l, 'vision'), '[pos, d_vision]');
      this.hooks.declare(actName('resid_mid', l, 'vision'), '[pos, d_vision]');
      this.hooks.declare(actName('resid_post', l, 'vision'), '[pos, d_vision]');
    }
  }

  /** w: weights under `vision_tower.vision_model`. post_layernorm is not loaded: LLaVA never uses it. */
  static async load(w: Weights, cfg: ClipVisionConfig, hooks: HookPoints): Promise<CLIPVisionTransformer> {
    const layers: CLIPEncoderLayer[] = [];
    for (let l = 0; l < cfg.num_hidden_layers; l++) layers.push(await CLIPEncoderLayer.load(w.pp(`encoder.layers.${l}`), cfg));
    return new CLIPVisionTransformer(cfg, hooks, await CLIPVisionEmbeddings.load(w.pp('embeddings'), cfg), await LayerNorm.load(w.pp('pre_layrnorm'), cfg.layer_norm_eps), layers);
  }

  /**
   * pixels [3, H, W] → HF hidden_states[at] ([1 + patches, d]). Layers past `at` run only
   * when a hook listens to them (LLaVA reads hidden_states[-2]; `dump` wants every layer
   * from the same pass, so the tower never runs twice).
   */
  forward(gpu: Gpu, pixels: Tensor, at = this.cfg.num_hidden_layers): Tensor {
    const L = this.cfg.num_hidden_layers;
    let upTo = at;
    for (let l = at; l < L; l++) if (['resid_pre', 'resid_mid', 'resid_post'].some((s) => this.hooks.listened(actName(s, l, 'vision')))) upTo = l + 1;
    const e = this.embeddings.forward(gpu, pixels);
    let h = this.preLayrnorm.forward(gpu, e);
    gpu.release(e);
    let kept: Tensor | undefined;
    for (let l = 0; l < upTo; l++) {
      h = this.hooks.run(actName('resid_pre', l, 'vision'), h);
      if (l === at) kept = h; // hidden_states[at] is the input of layer `at`
      const next = this.hooks.run(actName('resid_post', l, 'vision'), this.layers[l].forward(gpu, h, l, this.hooks));
      if (h !== kept) gpu.release(h);
      h = next;
    }
    if (upTo === at) kept = h;
    else gpu.release(h);
    return kept!;
  }
}

/** CLIPVisionModel under `prefix` (e.g. `vision_tower.vision_model`). */
export function clipVisionTensors(out: ExpectedTensor[], prefix: string, c: ClipVisionConfig): void {
  const h = c.hidden_size;
  const positions = (c.image_size / c.patch_size) ** 2 + 1;
  out.push(
    { name: `${prefix}.embeddings.class_embedding`, shape: [h] },
    { name: `${prefix}.embeddings.patch_embedding.weight`, shape: [h, c.num_channels, c.patch_size, c.patch_size] },
    { name: `${prefix}.embeddings.position_embedding.weight`, shape: [positions, h] },
  );
  layerNormTensors(out, `${prefix}.pre_layrnorm`, h); // sic: HF's spelling
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${prefix}.encoder.layers.${i}`;
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linearTensors(out, `${l}.self_attn.${p}`, h, h, true);
    layerNormTensors(out, `${l}.layer_norm1`, h);
    linearTensors(out, `${l}.mlp.fc1`, c.intermediate_size, h, true);
    linearTensors(out, `${l}.mlp.fc2`, h, c.intermediate_size, true);
    layerNormTensors(out, `${l}.layer_norm2`, h);
  }
  layerNormTensors(out, `${prefix}.post_layernorm`, h);
}

