/**
 * LLaVA-NeXT — mirrors HF LlavaNextForConditionalGeneration (modeling_llava_next.py):
 * LLaVA-1.5's `vision_tower.vision_model` (CLIP), `multi_modal_projector` and
 * `language_model` (LLaMA: Vicuna, Llama-3; or Mistral), plus the learned `image_newline`
 * [d_model], with images given as a base view and high-resolution tiles.
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/llava_next/modeling_llava_next.py
 *
 * The rules (HF's; the processor side is src/io/image-processor-llava-next.ts):
 * 1. pixel_values [views, 3, t, t]: the base view (the whole image squashed to t × t) first,
 *    then rows × cols tiles of the image resized into the pinpoint `select_best_resolution`
 *    picked and padded (t = vision_config.image_size; the pinpoint / t is the tile grid,
 *    `get_anyres_image_grid_shape`).
 * 2. Every view goes through CLIP on its own; features = hidden_states[vision_feature_layer]
 *    (before post_layernorm), CLS dropped (strategy "default", the only one that packs), all
 *    views through the projector: [views, P², d] with P = t / patch_size.
 * 3. `pack_image_features`: the tiles' features are laid out as one (rows·P) × (cols·P)
 *    patch grid (tile (i, j), patch (y, x) at grid row i·P + y, column j·P + x);
 *    `unpad_image` keeps the rows (image wider than the grid's aspect ratio) or columns
 *    (otherwise) that show the image, not the padding (image-processor-llava-next.ts
 *    `unpaddedRegion`); `image_newline` is appended after each kept row; the base view's P²
 *    features come first. So the image occupies P² + rows' · (cols' + 1) positions.
 * 4. Those features replace the `<image>` positions (one `<image>` in the prompt expands to
 *    that count, as LlavaNextProcessor does; an already-expanded prompt is taken as is).
 *
 * Hook points: the tower's `vision.*` fire once per view (base first); `projector.out`
 * [views · P², d] before packing; `projector.packed` [n_img, d] the packed features (the
 * dump's image_features); `vision.views.{k}` [views, 1 + P², d_vision] HF's
 * hidden_states[k] of every view, stacked (the dump's vision_hidden_states.{k}).
 * Position groups: `grids` are the base view's P × P patches and the tiles' kept grid (each
 * row followed by its image_newline, `newlines`), each with the part of the original image
 * it shows, so an object box selects its patches in both.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { LlavaNextConfig } from '../io/config-llava-next.ts';
import { anyresTile, anyresTokens, preprocessAnyres, tileRegionBox, type AnyresLayout } from '../io/image-processor-llava-next.ts';
import type { PixelValues } from '../io/image-processor.ts';
import { type Layout } from '../io/layouts.ts';
import type { ExpectedTensor } from '../io/expected-tensors.ts';
import { view } from '../ops/common.ts';
import { embedding } from '../ops/embedding.ts';
import { CLIPVisionTransformer } from './clip.ts';
import { LlamaForCausalLM } from './llama.ts';
import { expandImageTokens, LLAVA_LAYOUTS, llavaPromptIds, llavaTensors, LlavaMultiModalProjector } from './llava.ts';
import { MistralForCausalLM } from './mistral.ts';
import { checkObjectBox, decodeIds, positionGroups, vlmFiles, type FamilyInfo, type OpenedCheckpoint } from './open.ts';
import { decodeWithFeatures } from './splice.ts';
import type { PatchGrid, VlmFiles, VlmForwardOptions, VlmInput } from './vlm.ts';
import type { Weights } from './weights.ts';

/** hidden_states[k] of every view, stacked: the hook name (rule 2; k = 0..L of the tower). */
export const viewsHook = (k: number) => `vision.views.${k}`;

export class LlavaNextForConditionalGeneration {
  constructor(
    readonly cfg: LlavaNextConfig,
    readonly hooks: HookPoints,
    readonly visionTower: CLIPVisionTransformer,
    readonly multiModalProjector: LlavaMultiModalProjector,
    /** [1, d_model] */
    readonly imageNewline: Tensor,
    readonly languageModel: LlamaForCausalLM,
  ) {
    hooks.declare('projector.out', '[views * patches, d_model]');
    hooks.declare('projector.packed', '[n_img, d_model]');
    for (let k = 0; k <= cfg.vision_config.num_hidden_layers; k++) hooks.declare(viewsHook(k), '[views, pos, d_vision]');
  }

  static async load(w: Weights, cfg: LlavaNextConfig, hooks = new HookPoints()): Promise<LlavaNextForConditionalGeneration> {
    const lm = cfg.text_config.model_type === 'mistral' ? MistralForCausalLM : LlamaForCausalLM;
    const newline = await w.getF32('image_newline');
    return new LlavaNextForConditionalGeneration(
      cfg,
      hooks,
      await CLIPVisionTransformer.load(w.pp('vision_tower.vision_model'), cfg.vision_config, hooks),
      await LlavaMultiModalProjector.load(w.pp('multi_modal_projector'), cfg),
      view(newline, [1, newline.numel]),
      await lm.load(w.pp('language_model'), cfg.text_config, hooks),
    );
  }

  /** Index into the vision tower's hidden states (HF allows negative). */
  get featureLayer(): number {
    const L = this.cfg.vision_config.num_hidden_layers;
    const f = this.cfg.vision_feature_layer as number;
    return f < 0 ? L + 1 + f : f;
  }

  /** Rule 2 (with the `vision.views.{k}` stacks when someone listens): [views · P², d]. */
  private projectViews(gpu: Gpu, px: PixelValues): Tensor {
    const [views, , h, w] = px.shape as [number, 3, number, number];
    const dv = this.cfg.vision_config.hidden_size;
    const P2 = (this.cfg.vision_config.image_size / this.cfg.vision_config.patch_size) ** 2;
    const Lv = this.cfg.vision_config.num_hidden_layers;
    const towerHook = (k: number) => (k === 0 ? actName('resid_pre', 0, 'vision') : actName('resid_post', k - 1, 'vision'));
    const stacks = new Map<number, Tensor>();
    const unsubscribe: (() => void)[] = [];
    let current = 0;
    for (let k = 0; k <= Lv; k++) {
      if (!this.hooks.listened(viewsHook(k))) continue;
      const stack = gpu.tensor([views, P2 + 1, dv], 'f32', viewsHook(k));
      stacks.set(k, stack);
      unsubscribe.push(this.hooks.add(towerHook(k), (t) => gpu.copy(t, stack, 0, current * (P2 + 1) * dv, (P2 + 1) * dv)));
    }
    const selected = gpu.tensor([views * P2, dv], 'f32', 'vision.selected');
    const plane = 3 * h * w;
    try {
      for (current = 0; current < views; current++) {
        const pixels = gpu.upload(px.data.subarray(current * plane, (current + 1) * plane), [3, h, w], `pixel_values[${current}]`);
        const hidden = this.visionTower.forward(gpu, pixels, this.featureLayer);
        gpu.copy(hidden, selected, dv, current * P2 * dv, P2 * dv); // CLS dropped
        gpu.release(pixels, hidden);
      }
    } finally {
      for (const u of unsubscribe) u();
    }
    for (const [k, stack] of stacks) gpu.release(this.hooks.run(viewsHook(k), stack));
    const out = this.hooks.run('projector.out', this.multiModalProjector.forward(gpu, selected));
    gpu.release(selected);
    return out;
  }

  /** Rules 2-3: pixel_values → the packed image features [n_img, d]. */
  imageFeatures(gpu: Gpu, px: PixelValues): Tensor {
    if (!px.anyres || px.shape.length !== 4) throw new UserError('LLaVA-NeXT needs pixel_values as base view + tiles (its own image processor)');
    const projected = this.projectViews(gpu, px);
    const rows = packIndex(px.anyres, this.cfg.vision_config.patch_size);
    const ids = gpu.upload(rows, [rows.length], 'pack_image_features.rows');
    const n = projected.shape[0];
    const packed = embedding(gpu, ids, [{ tensor: projected, rowStart: 0 }, { tensor: this.imageNewline, rowStart: n }], { name: 'projector.packed' });
    gpu.release(ids, projected);
    return this.hooks.run('projector.packed', packed);
  }

  /** Prefill of a prepared input; returns the final-normed hidden states [S, d]. */
  forward(gpu: Gpu, x: VlmInput, opts: VlmForwardOptions = {}): Tensor {
    const features = x.pixels ? this.imageFeatures(gpu, x.pixels) : undefined;
    return decodeWithFeatures(gpu, this.languageModel, this.hooks, x, features, opts);
  }
}

/**
 * Rule 3 as a gather: for each packed position, the row of the projected features
 * [views · P², d] it copies (view v, patch p at v · P² + p), or P² · views (one past the
 * last) for `image_newline`.
 */
export function packIndex(layout: AnyresLayout, patchSize: number): Int32Array {
  const P = layout.tile / patchSize;
  const t = anyresTokens(layout, patchSize);
  const newline = (1 + layout.rows * layout.cols) * P * P;
  const out = new Int32Array(t.total);
  let i = 0;
  for (let p = 0; p < P * P; p++) out[i++] = p;
  for (let gy = t.region.top; gy < t.region.bottom; gy++) {
    for (let gx = t.region.left; gx < t.region.right; gx++) {
      const tileIndex = Math.floor(gy / P) * layout.cols + Math.floor(gx / P);
      out[i++] = (1 + tileIndex) * P * P + (gy % P) * P + (gx % P);
    }
    out[i++] = newline;
  }
  return out;
}

/** The dump contract's vision part: every view's hidden_states[k], the packed features. */
export function llavaNextDumpPoints(cfg: LlavaNextConfig): [string, string][] {
  const Lv = cfg.vision_config.num_hidden_layers;
  return [...Array.from({ length: Lv + 1 }, (_, k): [string, string] => [`vision_hidden_states.${k}`, viewsHook(k)]), ['image_features', 'projector.packed']];
}

/** A LLaVA-NeXT folder as VlmFiles (called by the registry once the folder is validated). */
export function llavaNextFiles(c: OpenedCheckpoint, cfg: LlavaNextConfig, chatTemplate: string | null): VlmFiles {
  const v = cfg.vision_config;
  const P = v.image_size / v.patch_size;
  const { tile } = anyresTile(c.processor);
  if (tile !== v.image_size) throw new UserError(`${c.processor.source ?? c.dir.name}: the image processor cuts ${tile}-px tiles but the vision tower reads ${v.image_size} px`);
  const info: FamilyInfo = {
    name: c.dir.name,
    config: cfg,
    lm: cfg.text_config,
    tokenizer: c.tokenizer,
    processor: c.processor,
    visualTokens: `the image features at the <image> position: the base view's ${P * P} CLIP patches, then the tiles' unpadded patch grid with image_newline after each row`,
    promptFor: (question, chat) => (chat ? question : `<image>\n${question}`),
    prepare(p, image, opts) {
      if (p.qformerInputIds !== undefined) throw new UserError('--qformer-input-ids is for InstructBLIP checkpoints; this one is LLaVA-NeXT');
      if (opts?.padToSquare) throw new UserError("--pad-to-square is LLaVA-1.5's expand2square; LLaVA-NeXT tiles the image and pads the tiles itself");
      const pixels = image ? preprocessAnyres(image, c.processor) : undefined;
      const objectBox = checkObjectBox(opts?.objectBox, image, true);
      const tokens = pixels ? anyresTokens(pixels.anyres!, v.patch_size) : null;
      const n = tokens?.total ?? 0;
      const prompt = llavaPromptIds(c, cfg, chatTemplate, p, !!pixels);
      // the context check with the image's own numbers (one <image> expands to n; n of them stay)
      const max = cfg.text_config.max_position_embeddings;
      const given = prompt.ids.filter((i) => i === cfg.image_token_index).length;
      const length = prompt.ids.length + (given === 1 ? n - 1 : 0);
      if (pixels && length > max) {
        const [h, w] = pixels.anyres!.imageSize;
        throw new UserError(`the ${w}×${h} image needs ${n} tokens (${pixels.shape[0]} views of ${v.image_size} px); with the prompt that is ${length} positions, past max_position_embeddings = ${max}`);
      }
      const x = expandImageTokens(cfg, prompt.ids, !!pixels, n);
      const bos = c.tokenizer?.bosId ?? cfg.text_config.bos_token_id;
      const grown = x.ids.length - prompt.ids.length;
      const question = prompt.question?.map((i) => (pixels && i > x.image[0] ? i + grown : i)) as [number, number] | undefined;
      if (!pixels || !tokens || !image) return { ids: x.ids, pixels, groups: positionGroups(x.ids, x.image, bos, { question }) };
      // rule 3's layout: the base view's P × P patches, then the kept grid with a newline ending each row
      const tilesFirst = x.image[0] + P * P;
      const grids: PatchGrid[] = [
        { view: 'base', rows: P, cols: P, first: x.image[0], stride: P, box: [0, 0, image.width, image.height] },
        { view: 'tiles', rows: tokens.rows, cols: tokens.cols, first: tilesFirst, stride: tokens.cols + 1, box: tileRegionBox(pixels.anyres!, v.patch_size) },
      ];
      const newlines = Array.from({ length: tokens.rows }, (_, r) => tilesFirst + r * (tokens.cols + 1) + tokens.cols);
      return { ids: x.ids, pixels, groups: positionGroups(x.ids, x.image, bos, { question, grids, newlines, objectBox }) };
    },
    decode: (ids) => decodeIds(c.tokenizer, ids),
  };
  return vlmFiles(c, info, (w) => LlavaNextForConditionalGeneration.load(w, cfg));
}

/** Every tensor of a LlavaNextForConditionalGeneration checkpoint: LLaVA's and image_newline. */
export function llavaNextTensors(c: LlavaNextConfig): ExpectedTensor[] {
  return [...llavaTensors(c), { name: 'image_newline', shape: [c.text_config.hidden_size] }];
}

/**
 * LLaVA's key layouts plus `image_newline` (top level on the hub and in what transformers 5's
 * save_pretrained writes, checked in test/hf/llava-next-parity.test.ts; under `model.` in
 * the module tree of transformers ≥ 4.52).
 */
export const LLAVA_NEXT_LAYOUTS: readonly Layout[] = LLAVA_LAYOUTS.map((l) => ({
  ...l,
  writtenBy: l.writtenBy.replace('llava-hf checkpoints', 'llava-hf llava-v1.6 / llama3-llava-next checkpoints'),
  rules: [...l.rules, l.id === 'transformers4.52' ? { from: 'model.image_newline', to: 'image_newline' } : { from: 'image_newline', to: 'image_newline' }],
}));
