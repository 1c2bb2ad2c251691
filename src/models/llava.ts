/**
 * LLaVA-1.5 — mirrors HF LlavaForConditionalGeneration (modeling_llava.py), composed of
 * `vision_tower.vision_model` (CLIP), `multi_modal_projector` {linear_1, act, linear_2}
 * and `language_model` (LLaMA), by the canonical names of src/io/layouts.ts (the hub
 * layout of llava-hf/*; folders in other layouts are read through its key map).
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/llava/modeling_llava.py
 *
 * Image features: hidden_states[vision_feature_layer] of the vision tower (taken before
 * post_layernorm), CLS dropped for strategy "default", through the projector. They replace
 * the embeddings at the `<image>` positions; a single `<image>` token expands to all
 * features, as HF's processor does, and an already-expanded prompt is accepted as is.
 * Hook point: projector.out [n_img, d_model].
 *
 * Prompts: `--prompt` is tokenised as is (BOS as the tokenizer config says), or wrapped in
 * the checkpoint's chat template with `--chat` (`USER: <image>\n{question} ASSISTANT:`);
 * `--input-ids` gives the ids instead (with one `<image>` or all of them).
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import { chatPrompt } from '../io/chat.ts';
import type { LmConfig } from '../io/config.ts';
import { shownRegion } from '../io/image-processor.ts';
import type { LlavaConfig } from '../io/config-llava.ts';
import type { LlamaLikeConfig } from '../io/config-mistral.ts';
import { linearTensors, type ExpectedTensor } from '../io/expected-tensors.ts';
import { children, same, type Layout } from '../io/layouts.ts';
import { CLIP_VISION_CHILDREN, CLIPVisionTransformer, clipVisionTensors } from './clip.ts';
import { activationOf, Linear } from './linear.ts';
import { LlamaForCausalLM, llamaTensors } from './llama.ts';
import { decodeWithFeatures } from './splice.ts';
import { checkContext, checkObjectBox, decodeIds, lmInputIds, needTokenizer, pixelValues, positionGroups, vlmFiles, textSpan, type FamilyInfo, type OpenedCheckpoint } from './open.ts';
import type { PromptSpec, VlmFiles, VlmForwardOptions, VlmInput, PatchGrid } from './vlm.ts';
import type { Weights } from './weights.ts';

export class LlavaMultiModalProjector {
  constructor(
    readonly linear1: Linear,
    readonly linear2: Linear,
    readonly act: string,
  ) {}

  static async load(w: Weights, cfg: Pick<LlavaConfig, 'multimodal_projector_bias' | 'projector_hidden_act'>): Promise<LlavaMultiModalProjector> {
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
    readonly hooks: HookPoints,
    readonly visionTower: CLIPVisionTransformer,
    readonly multiModalProjector: LlavaMultiModalProjector,
    readonly languageModel: LlamaForCausalLM,
  ) {
    hooks.declare('projector.out', '[n_img, d_model]');
  }

  static async load(w: Weights, cfg: LlavaConfig, hooks = new HookPoints()): Promise<LlavaForConditionalGeneration> {
    if (Array.isArray(cfg.vision_feature_layer)) throw new UserError('vision_feature_layer as a list (feature concatenation) is not supported yet');
    return new LlavaForConditionalGeneration(
      cfg,
      hooks,
      await CLIPVisionTransformer.load(w.pp('vision_tower.vision_model'), cfg.vision_config, hooks),
      await LlavaMultiModalProjector.load(w.pp('multi_modal_projector'), cfg),
      await LlamaForCausalLM.load(w.pp('language_model'), cfg.text_config, hooks),
    );
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

  /** Prefill of a prepared input; returns the final-normed hidden states [S, d]. */
  forward(gpu: Gpu, x: VlmInput, opts: VlmForwardOptions = {}): Tensor {
    let features: Tensor | undefined;
    if (x.pixels) {
      const px = gpu.upload(x.pixels.data, x.pixels.shape, 'pixel_values');
      features = this.imageFeatures(gpu, px);
      gpu.release(px);
    }
    return decodeWithFeatures(gpu, this.languageModel, this.hooks, x, features, opts);
  }
}

/** The dump contract's vision part: hidden_states[k] of the tower, k = 0..Lv. */
export function llavaDumpPoints(cfg: LlavaConfig): [string, string][] {
  const Lv = cfg.vision_config.num_hidden_layers;
  return [
    ['vision_hidden_states.0', actName('resid_pre', 0, 'vision')],
    ...Array.from({ length: Lv }, (_, l): [string, string] => [`vision_hidden_states.${l + 1}`, actName('resid_post', l, 'vision')]),
    ['image_features', 'projector.out'],
  ];
}

/** A LLaVA checkpoint folder as VlmFiles (called by the registry once the folder is validated). */
export function llavaFiles(c: OpenedCheckpoint, cfg: LlavaConfig, chatTemplate: string | null): VlmFiles {
  const n = imageTokenCount(cfg);
  const info: FamilyInfo = {
    name: c.dir.name,
    config: cfg,
    lm: cfg.text_config,
    tokenizer: c.tokenizer,
    processor: c.processor,
    visualTokens: `the ${n} image features (CLIP patches through the projector), at the <image> position of the prompt`,
    promptFor: (question, chat) => (chat ? question : `<image>\n${question}`),
    prepare(p, image, opts) {
      if (p.qformerInputIds !== undefined) throw new UserError('--qformer-input-ids is for InstructBLIP checkpoints; this one is LLaVA');
      const pixels = image ? pixelValues(c, image, cfg.vision_config.image_size, opts) : undefined;
      const objectBox = checkObjectBox(opts?.objectBox, image, true);
      const prompt = llavaPromptIds(c, cfg, chatTemplate, p, !!pixels);
      const x = expandImageTokens(cfg, prompt.ids, !!pixels, imageTokenCount(cfg));
      const bos = c.tokenizer?.bosId ?? cfg.text_config.bos_token_id;
      // positions after the (single) <image> token move by the features it expanded to
      const grown = x.ids.length - prompt.ids.length;
      const question = prompt.question?.map((i) => (pixels && i > x.image[0] ? i + grown : i)) as [number, number] | undefined;
      const side = cfg.vision_config.image_size / cfg.vision_config.patch_size;
      const first = x.image[0] + (cfg.vision_feature_select_strategy === 'default' ? 0 : 1);
      const grids: PatchGrid[] = image ? [{ view: 'image', rows: side, cols: side, first, stride: side, box: shownRegion(image.height, image.width, c.processor, opts) }] : [];
      return { ids: x.ids, pixels, groups: positionGroups(x.ids, x.image, bos, { question, grids, objectBox }) };
    },
    decode: (ids) => decodeIds(c.tokenizer, ids),
  };
  return vlmFiles(c, info, (w) => LlavaForConditionalGeneration.load(w, cfg));
}

/**
 * Token ids before image expansion, and where the question sits among them (prompts only).
 * A chat template that writes BOS itself is tokenised without adding another (chat.ts).
 */
export function llavaPromptIds(
  c: OpenedCheckpoint,
  cfg: { text_config: LmConfig },
  chatTemplate: string | null,
  p: PromptSpec,
  hasImage: boolean,
): { ids: number[]; question: [number, number] | null } {
  if (p.inputIds !== undefined) {
    if (p.prompt !== undefined) throw new UserError('give either --prompt or --input-ids, not both');
    return { ids: lmInputIds(p.inputIds, cfg.text_config), question: null };
  }
  if (p.prompt === undefined) throw new UserError('a prompt is needed: --prompt TEXT or --input-ids 1,2,3');
  const tok = needTokenizer(c);
  const bosToken = tok.bosId === null ? null : tok.idToToken(tok.bosId);
  const text = p.chat ? chatPrompt(chatTemplate, p.prompt, { image: hasImage, source: c.dir.name, bosToken }) : p.prompt;
  const addBos = p.chat && bosToken !== null && text.startsWith(bosToken) ? false : undefined;
  // the question: the user's text inside the template, or (raw prompt) everything after <image>
  const afterImage = text.includes('<image>') ? text.indexOf('<image>') + '<image>'.length : 0;
  const from = p.chat ? text.indexOf(p.prompt, afterImage) : afterImage;
  const to = p.chat ? from + p.prompt.length : text.length;
  return { ids: tok.encode(text, { addBos }), question: textSpan(tok, text, from, to, { addBos }) };
}

/** Number of image features one image contributes. */
function imageTokenCount(cfg: LlavaConfig): number {
  const v = cfg.vision_config;
  const patches = (v.image_size / v.patch_size) ** 2;
  return cfg.vision_feature_select_strategy === 'default' ? patches : patches + 1;
}

/**
 * Expands a single `<image>` token to the `n` feature positions and validates the prompt
 * (ids in the vocabulary, image tokens consistent with the image, the context length).
 * Needs only the config, so a command can check its inputs before loading any weight.
 */
export function expandImageTokens(cfg: { image_token_index: number; text_config: LmConfig }, ids: readonly number[], hasImage: boolean, n: number): Expanded {
  const tok = cfg.image_token_index;
  const vocab = cfg.text_config.vocab_size;
  const bad = ids.find((i) => !Number.isInteger(i) || i < 0 || i >= vocab);
  if (bad !== undefined) throw new UserError(`token id ${bad} is outside the vocabulary (0..${vocab - 1})`);
  if (tok < 0 || tok >= vocab) throw new UserError(`config image_token_index ${tok} is outside the vocabulary of ${vocab}`);
  const x = placeImage(ids, tok, n, hasImage);
  checkContext(x.ids, cfg.text_config);
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

/** Every tensor of a LlavaForConditionalGeneration checkpoint (names checked against the real llava-1.5-7b-hf index, test/fixtures/). */
export function llavaTensors(c: Pick<LlavaConfig, 'vision_config' | 'vision_feature_layer' | 'multimodal_projector_bias'> & { text_config: LlamaLikeConfig }): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  clipVisionTensors(out, 'vision_tower.vision_model', c.vision_config);
  const layers = Array.isArray(c.vision_feature_layer) ? c.vision_feature_layer.length : 1;
  const t = c.text_config.hidden_size;
  linearTensors(out, 'multi_modal_projector.linear_1', t, c.vision_config.hidden_size * layers, c.multimodal_projector_bias);
  linearTensors(out, 'multi_modal_projector.linear_2', t, t, c.multimodal_projector_bias);
  llamaTensors(out, 'language_model', c.text_config);
  return out;
}

/**
 * The key layouts LLaVA folders come in (src/io/layouts.ts), checked by
 * test/io/layouts.test.ts against folders written by transformers 5.18's save_pretrained:
 * - `hub`: the published llava-hf folders, and what transformers < 4.52 saved.
 * - `transformers4.52`: the module tree of LlavaForConditionalGeneration since
 *   transformers 4.52 (`model.state_dict()`, and safetensors written from it without
 *   `save_pretrained`): `model.` in front, `lm_head` on top, the vision tower with
 *   `vision_model.` (4.x, a CLIPVisionModel) or without it (5.x).
 * - `transformers5`: what transformers 5's `save_pretrained` writes: the hub layout
 *   except that the vision tower drops `vision_model.` (`vision_tower.embeddings.…`).
 */
export const LLAVA_LAYOUTS: readonly Layout[] = [
  {
    id: 'hub',
    writtenBy: 'the llava-hf checkpoints on the hub; transformers < 4.52 save_pretrained',
    rules: same('vision_tower.vision_model.', 'multi_modal_projector.', 'language_model.model.', 'language_model.lm_head.'),
  },
  {
    id: 'transformers4.52',
    writtenBy: "the module tree of transformers >= 4.52 (model.state_dict())",
    rules: [
      { from: 'model.vision_tower.vision_model.', to: 'vision_tower.vision_model.' },
      ...children('model.vision_tower.', 'vision_tower.vision_model.', CLIP_VISION_CHILDREN),
      { from: 'model.multi_modal_projector.', to: 'multi_modal_projector.' },
      { from: 'model.language_model.', to: 'language_model.model.' },
      { from: 'lm_head.', to: 'language_model.lm_head.' },
    ],
  },
  {
    id: 'transformers5',
    writtenBy: "transformers 5's save_pretrained",
    rules: [...children('vision_tower.', 'vision_tower.vision_model.', CLIP_VISION_CHILDREN), ...same('multi_modal_projector.', 'language_model.model.', 'language_model.lm_head.')],
  },
];

