/**
 * Chameleon — mirrors HF ChameleonForConditionalGeneration + ChameleonProcessor
 * (modeling_chameleon.py, processing_chameleon.py): `model.vqmodel` (the VQ image tokenizer,
 * models/chameleon-vq.ts), `model.{embed_tokens, layers, norm}` + `lm_head` (the language
 * model, models/chameleon-lm.ts). Images enter as tokens: the VQ codes of the image, mapped
 * to BPE ids, replace the `<image>` placeholders and are embedded like text.
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/chameleon/modeling_chameleon.py
 *
 * The sequence as ChameleonProcessor builds it (transformers 5): the prompt's text + the
 * tokenizer's `sep_token` (the chat-mode separator, always appended), every `<image>` in it
 * written out as `<racm3:break>` (start of image) + `<image>` × image_seq_length + `<eoss>`
 * (end of image), the whole tokenised by the checkpoint's tokenizer (BOS as it says).
 * image_seq_length = (crop / 2^(levels − 1))² (1024 for 512 px). `--input-ids` are taken
 * as given (placeholders written out). Position groups: `image` = the placeholders, which
 * are the VQ latent grid row by row (side = crop / 2^(levels − 1)): one patch grid over
 * the part of the image the processor kept, as LLaVA's, so the page, the figures and the
 * patch groups place them on the image.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { HookPoints } from '../hooks/hooks.ts';
import type { ChameleonConfig } from '../io/config-chameleon.ts';
import { preprocessImage, shownRegion } from '../io/image-processor.ts';
import type { ExpectedTensor } from '../io/expected-tensors.ts';
import { same, type Layout } from '../io/layouts.ts';
import { ChameleonForCausalLM, chameleonLmTensors } from './chameleon-lm.ts';
import { ChameleonVQVAE, chameleonVqTensors, VQ_REQUIRED } from './chameleon-vq.ts';
import { checkContext, checkObjectBox, decodeIds, lmInputIds, needTokenizer, positionGroups, vlmFiles, type FamilyInfo, type OpenedCheckpoint } from './open.ts';
import { decodeWithFeatures } from './splice.ts';
import type { PatchGrid, PromptSpec, VlmFiles, VlmForwardOptions, VlmInput } from './vlm.ts';
import type { Weights } from './weights.ts';

export const IMAGE_START = '<racm3:break>';
export const IMAGE_END = '<eoss>';
const VQ = 'model.vqmodel';

export class ChameleonForConditionalGeneration {
  constructor(
    readonly cfg: ChameleonConfig,
    readonly hooks: HookPoints,
    readonly vqmodel: ChameleonVQVAE | null,
    readonly languageModel: ChameleonForCausalLM,
  ) {}

  static async load(w: Weights, cfg: ChameleonConfig, hasVq: boolean, hooks = new HookPoints()): Promise<ChameleonForConditionalGeneration> {
    const vq = hasVq ? await ChameleonVQVAE.load(w.pp(VQ), cfg.vq_config, cfg.image_code_ids, hooks) : null;
    return new ChameleonForConditionalGeneration(cfg, hooks, vq, await ChameleonForCausalLM.loadChameleon(w, cfg.text_config, cfg.image_code_ids, hooks));
  }

  /** Prefill of a prepared input; returns the final-normed hidden states [S, d]. */
  forward(gpu: Gpu, x: VlmInput, opts: VlmForwardOptions = {}): Tensor {
    let features: Tensor | undefined;
    if (x.pixels) {
      if (!this.vqmodel) throw new UserError(noVq(this.cfg));
      const ids = this.vqmodel.imageTokenIds(gpu, x.pixels);
      features = this.languageModel.embed(gpu, ids);
      gpu.release(ids);
    }
    return decodeWithFeatures(gpu, this.languageModel, this.hooks, x, features, opts);
  }
}

function noVq(cfg: ChameleonConfig): string {
  return `this checkpoint has no VQ image tokenizer weights (${VQ}.*, ${cfg.vq_config.num_embeddings}-code codebook): image input needs them; text-only prompts work`;
}

/** The VQ latent grid (rows × cols image tokens) of a processor output of h × w pixels. */
function latentGrid(cfg: ChameleonConfig, h: number, w: number): [number, number] {
  const f = 2 ** (cfg.vq_config.channel_multiplier.length - 1);
  if (h % f || w % f) throw new UserError(`the image processor makes ${h}×${w} images; the VQ encoder downsamples by ${f} and needs multiples of it`);
  return [h / f, w / f];
}

/** A Chameleon checkpoint folder as VlmFiles (called by the registry once the folder is validated). */
export function chameleonFiles(c: OpenedCheckpoint, cfg: ChameleonConfig): VlmFiles {
  const found = c.report.match.found;
  const hasVq = VQ_REQUIRED.every((n) => found.has(`${VQ}.${n}`));
  const imageId = cfg.image_token_id;
  const info: FamilyInfo = {
    name: c.dir.name,
    config: cfg,
    lm: cfg.text_config,
    tokenizer: c.tokenizer,
    processor: c.processor,
    visualTokens: `the image's VQ codes as BPE tokens, between ${IMAGE_START} and ${IMAGE_END}`,
    promptFor: (question) => `<image>${question}`,
    prepare(p, image, opts) {
      if (p.qformerInputIds !== undefined) throw new UserError('--qformer-input-ids is for InstructBLIP checkpoints; this one is Chameleon');
      if (image && !hasVq) throw new UserError(noVq(cfg));
      const objectBox = checkObjectBox(opts?.objectBox, image, true);
      const pixels = image ? preprocessImage(image, c.processor, opts) : undefined;
      const [rows, cols] = pixels ? latentGrid(cfg, pixels.shape[1], pixels.shape[2]) : [0, 0];
      const n = rows * cols;
      const ids = chameleonIds(c, cfg, p, n);
      const at = ids.flatMap((t, i) => (t === imageId ? [i] : []));
      if (!pixels && at.length) throw new UserError(`the prompt has ${at.length} <image> token(s) but no image was given`);
      if (pixels && at.length === 0) throw new UserError('an image was given but the prompt has no <image> token (add "<image>" where the image goes)');
      if (pixels && (at.length !== n || at[n - 1] - at[0] !== n - 1)) throw new UserError(`the prompt has ${at.length} <image> tokens; one image is ${n} in a row (one "<image>" in a prompt expands to them)`);
      checkContext(ids, cfg.text_config);
      const span: [number, number] = pixels ? [at[0], at[0] + n] : [0, 0];
      // the sentinels around the placeholders, where they hold them (--input-ids may not)
      const sentinel = (i: number, t: string) => (pixels && c.tokenizer && ids[i] === c.tokenizer.tryTokenId(t) ? i : null);
      const imageStart = sentinel(span[0] - 1, IMAGE_START);
      const imageEnd = sentinel(span[1], IMAGE_END);
      const grids: PatchGrid[] = image && pixels ? [{ view: 'image', rows, cols, first: span[0], stride: cols, box: shownRegion(image.height, image.width, c.processor, opts) }] : [];
      return { ids, pixels, groups: positionGroups(ids, span, c.tokenizer?.bosId ?? cfg.text_config.bos_token_id, { imageStart, imageEnd, grids, objectBox }) };
    },
    decode: (ids) => decodeIds(c.tokenizer, ids),
  };
  return vlmFiles(c, info, (w) => ChameleonForConditionalGeneration.load(w, cfg, hasVq));
}

/** The LM ids of a prompt, as ChameleonProcessor builds them (file header). */
function chameleonIds(c: OpenedCheckpoint, cfg: ChameleonConfig, p: PromptSpec, n: number): number[] {
  if (p.inputIds !== undefined) {
    if (p.prompt !== undefined) throw new UserError('give either --prompt or --input-ids, not both');
    return lmInputIds(p.inputIds, cfg.text_config);
  }
  if (p.prompt === undefined) throw new UserError('a prompt is needed: --prompt TEXT or --input-ids 1,2,3');
  const tok = needTokenizer(c);
  for (const t of [IMAGE_START, IMAGE_END, '<image>']) tok.tokenId(t); // a UserError naming a missing one
  if (tok.tokenId('<image>') !== cfg.image_token_id) throw new UserError(`the tokenizer's <image> is ${tok.tokenId('<image>')} but config.json's vocabulary_map says ${cfg.image_token_id}`);
  if (tok.sepToken === null) throw new UserError(`${c.dir.name}: tokenizer_config.json names no sep_token (ChameleonProcessor appends it to every prompt)`);
  const text = p.prompt + tok.sepToken;
  // without an image the placeholder stays as written (and is refused by `prepare`)
  return tok.encode(n ? text.split('<image>').join(IMAGE_START + '<image>'.repeat(n) + IMAGE_END) : text);
}

/** The dump contract's Chameleon part: the BPE ids the image became. */
export function chameleonDumpPoints(): [string, string][] {
  return [['image_token_ids', 'vq.image_token_ids']];
}

/** Every tensor of a ChameleonForConditionalGeneration checkpoint (the VQ model's optional). */
export function chameleonTensors(c: ChameleonConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  chameleonLmTensors(out, c.text_config);
  chameleonVqTensors(out, VQ, c.vq_config);
  return out;
}

/** facebook/chameleon-* (converted by transformers' convert_chameleon_weights_to_hf.py) and transformers 5's save_pretrained: the same names. */
export const CHAMELEON_LAYOUTS: readonly Layout[] = [{ id: 'hub', writtenBy: "the facebook/chameleon checkpoints; transformers 5's save_pretrained", rules: same('model.', 'lm_head.') }];
