/**
 * LLaVA-1.5 — mirrors HF LlavaForConditionalGeneration (modeling_llava.py), composed of
 * `vision_tower.vision_model` (CLIP), `multi_modal_projector` {linear_1, act, linear_2}
 * and `language_model` (LLaMA), in the classic checkpoint layout of llava-hf/*.
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/llava/modeling_llava.py
 *
 * Image features: hidden_states[vision_feature_layer] of the vision tower (taken before
 * post_layernorm), CLS dropped for strategy "default", through the projector. They replace
 * the embeddings at the `<image>` positions; a single `<image>` token expands to all
 * features, as HF's processor does, and an already-expanded prompt is accepted as is.
 * Hook point: projector.out [n_img, d_model].
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import type { LlavaConfig } from '../io/config.ts';
import { CLIPVisionTransformer, activationOf } from './clip.ts';
import { Linear } from './linear.ts';
import { LlamaForCausalLM } from './llama.ts';
import type { Weights } from './weights.ts';

export class LlavaMultiModalProjector {
  constructor(
    readonly linear1: Linear,
    readonly linear2: Linear,
    readonly act: string,
  ) {}

  static async load(w: Weights, cfg: LlavaConfig): Promise<LlavaMultiModalProjector> {
    const b = cfg.multimodal_projector_bias;
    return new LlavaMultiModalProjector(await Linear.load(w.pp('linear_1'), b), await Linear.load(w.pp('linear_2'), b), cfg.projector_hidden_act);
  }

  forward(gpu: Gpu, x: Tensor): Tensor {
    const h = this.linear1.forward(gpu, x, { act: activationOf(this.act) });
    const out = this.linear2.forward(gpu, h, { name: 'projector.out' });
    gpu.release(h);
    return out;
  }
}

/** Where the image sits in the expanded sequence. */
export interface Expanded {
  ids: number[];
  /** [start, end) of the image-feature positions. */
  image: [number, number];
}

export class LlavaForConditionalGeneration {
  constructor(
    readonly cfg: LlavaConfig,
    readonly visionTower: CLIPVisionTransformer,
    readonly multiModalProjector: LlavaMultiModalProjector,
    readonly languageModel: LlamaForCausalLM,
  ) {
    languageModel.hooks.declare('projector.out', '[n_img, d_model]');
  }

  static async load(w: Weights, cfg: LlavaConfig): Promise<LlavaForConditionalGeneration> {
    if (Array.isArray(cfg.vision_feature_layer)) throw new UserError('vision_feature_layer as a list (feature concatenation) is not supported yet');
    return new LlavaForConditionalGeneration(
      cfg,
      await CLIPVisionTransformer.load(w.pp('vision_tower.vision_model'), cfg.vision_config),
      await LlavaMultiModalProjector.load(w.pp('multi_modal_projector'), cfg),
      await LlamaForCausalLM.load(w.pp('language_model'), cfg.text_config),
    );
  }

  get hooks() {
    return this.languageModel.hooks;
  }

  /** Index into the vision tower's hidden states (HF allows negative). */
  get featureLayer(): number {
    const L = this.cfg.vision_config.num_hidden_layers;
    const f = this.cfg.vision_feature_layer as number;
    return f < 0 ? L + 1 + f : f;
  }

  /** pixels [3, H, W] → image features [n_img, d_model]. */
  imageFeatures(gpu: Gpu, pixels: Tensor): Tensor {
    const hidden = this.visionTower.forward(gpu, pixels, this.featureLayer);
    const d = hidden.shape[1];
    const skip = this.cfg.vision_feature_select_strategy === 'default' ? 1 : 0;
    const n = hidden.shape[0] - skip;
    const selected = gpu.tensor([n, d], 'f32', 'vision.selected');
    gpu.copy(hidden, selected, skip * d, 0, n * d);
    const out = this.hooks.run('projector.out', this.multiModalProjector.forward(gpu, selected));
    gpu.release(hidden, selected);
    return out;
  }

  /** Expands a single `<image>` token to all feature positions; validates the prompt. */
  expand(ids: readonly number[], hasImage: boolean): Expanded {
    return expandImageTokens(this.cfg, ids, hasImage);
  }

  /** HF inputs_embeds: token embeddings with the image features spliced in. */
  inputsEmbeds(gpu: Gpu, ids: Tensor, image: [number, number], features?: Tensor): Tensor {
    const e = this.languageModel.embed(gpu, ids);
    if (features) {
      const d = e.shape[1];
      gpu.copy(features, e, 0, image[0] * d, (image[1] - image[0]) * d);
    }
    return e;
  }
}

/** Number of image features one image contributes. */
export function imageTokenCount(cfg: LlavaConfig): number {
  const v = cfg.vision_config;
  const patches = (v.image_size / v.patch_size) ** 2;
  return cfg.vision_feature_select_strategy === 'default' ? patches : patches + 1;
}

/**
 * Expands a single `<image>` token to all feature positions and validates the prompt
 * (ids in the vocabulary, image tokens consistent with the image, the context length).
 * Needs only the config, so a command can check its inputs before loading any weight.
 */
export function expandImageTokens(cfg: LlavaConfig, ids: readonly number[], hasImage: boolean): Expanded {
  const tok = cfg.image_token_index;
  const vocab = cfg.text_config.vocab_size;
  const bad = ids.find((i) => !Number.isInteger(i) || i < 0 || i >= vocab);
  if (bad !== undefined) throw new UserError(`token id ${bad} is outside the vocabulary (0..${vocab - 1})`);
  if (tok < 0 || tok >= vocab) throw new UserError(`config image_token_index ${tok} is outside the vocabulary of ${vocab}`);
  const x = placeImage(ids, tok, imageTokenCount(cfg), hasImage);
  const max = cfg.text_config.max_position_embeddings;
  if (x.ids.length > max) throw new UserError(`the prompt is ${x.ids.length} tokens after image expansion, longer than the model's max_position_embeddings = ${max}`);
  return x;
}

function placeImage(ids: readonly number[], tok: number, n: number, hasImage: boolean): Expanded {
  const at = ids.flatMap((t, i) => (t === tok ? [i] : []));
  if (!hasImage) {
    if (at.length) throw new UserError(`the prompt has ${at.length} <image> token(s) but no image was given`);
    return { ids: [...ids], image: [0, 0] };
  }
  if (at.length === 0) throw new UserError('an image was given but the prompt has no <image> token (add "<image>" to the prompt, or use --chat)');
  if (at.length === 1) {
    const i = at[0];
    return { ids: [...ids.slice(0, i), ...Array(n).fill(tok), ...ids.slice(i + 1)], image: [i, i + n] };
  }
  const contiguous = at.length === n && at[n - 1] - at[0] === n - 1;
  if (!contiguous) throw new UserError(`the prompt has ${at.length} <image> tokens for one image: use one (it expands to ${n}) or exactly ${n} in a row`);
  return { ids: [...ids], image: [at[0], at[0] + n] };
}
