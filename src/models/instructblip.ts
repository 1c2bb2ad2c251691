/**
 * InstructBLIP (Vicuna) — mirrors HF InstructBlipForConditionalGeneration
 * (modeling_instructblip.py), composed of `vision_model` (EVA ViT, eva.ts), `query_tokens`
 * [1, Q, d_q], `qformer` (qformer.ts), `language_projection` (Linear d_q → d_lm) and
 * `language_model` (LLaMA, llama.ts).
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/instructblip/modeling_instructblip.py
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/instructblip/processing_instructblip.py
 *
 * Sequence rule (InstructBlipProcessor + the model's masked_scatter): the LM input is
 *   [Q image tokens, BOS, prompt tokens]
 * — the processor puts `num_query_tokens` image tokens in front of the tokenised prompt
 * (which starts with the tokenizer's BOS: `</s>` = 2 for Vicuna-InstructBLIP, read from
 * tokenizer_config.json, never from text_config.bos_token_id, which the hub sets to 0),
 * and the model scatters the Q projected query outputs into those positions. RoPE
 * positions count from the first query (0..T−1), causal over the whole sequence; older
 * transformers concatenated [projected queries ; prompt embeddings], the same sequence.
 * The Q-Former reads the same instruction through its own tokenizer (`qformer_tokenizer/`,
 * bert-base-uncased WordPiece, lower-cased, `[CLS] … [SEP]`).
 *
 * Prompts: `--prompt` is the instruction for both tokenisers; `--input-ids` gives the LM
 * ids (with the Q image tokens in front, or without: then they are prepended, as the
 * processor does), and with `--prompt` as well the prompt feeds only the Q-Former;
 * `--qformer-input-ids` gives the Q-Former ids. There is no chat template.
 *
 * Hook point: projector.out [n_query, d_model] (language_projection output).
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { InstructBlipConfig } from '../io/config-instructblip.ts';
import { linearTensors, type ExpectedTensor } from '../io/expected-tensors.ts';
import { same, type Layout } from '../io/layouts.ts';
import { view } from '../ops/common.ts';
import { parseInputIds, type QformerTokenizer } from '../io/tokenizer.ts';
import { evaVisionTensors, InstructBlipVisionModel } from './eva.ts';
import { Linear } from './linear.ts';
import { LlamaForCausalLM, llamaTensors } from './llama.ts';
import { decodeWithFeatures } from './splice.ts';
import { checkContext, decodeIds, lmInputIds, needTokenizer, pixelValues, positionGroups, vlmFiles, type FamilyInfo, type OpenedCheckpoint } from './open.ts';
import { InstructBlipQFormerModel, qformerTensors } from './qformer.ts';
import type { PromptSpec, VlmFiles, VlmForwardOptions, VlmInput } from './vlm.ts';
import type { Weights } from './weights.ts';

export class InstructBlipForConditionalGeneration {
  constructor(
    readonly cfg: InstructBlipConfig,
    readonly hooks: HookPoints,
    readonly visionModel: InstructBlipVisionModel,
    /** [Q, d_q] */
    readonly queryTokens: Tensor,
    readonly qformer: InstructBlipQFormerModel,
    readonly languageProjection: Linear,
    readonly languageModel: LlamaForCausalLM,
  ) {
    hooks.declare('projector.out', '[n_query, d_model]');
  }

  static async load(w: Weights, cfg: InstructBlipConfig, hooks = new HookPoints()): Promise<InstructBlipForConditionalGeneration> {
    return new InstructBlipForConditionalGeneration(
      cfg,
      hooks,
      await InstructBlipVisionModel.load(w.pp('vision_model'), cfg.vision_config, hooks),
      view(await w.getF32('query_tokens'), [cfg.num_query_tokens, cfg.qformer_config.hidden_size]),
      await InstructBlipQFormerModel.load(w.pp('qformer'), cfg.qformer_config, hooks),
      await Linear.load(w.pp('language_projection'), true),
      await LlamaForCausalLM.load(w.pp('language_model'), cfg.text_config, hooks),
    );
  }

  /** pixels [3, H, W] and the instruction's Q-Former ids → projected query outputs [Q, d_model]. */
  imageFeatures(gpu: Gpu, pixels: Tensor, qformerIds: readonly number[]): Tensor {
    const image = this.visionModel.forward(gpu, pixels);
    const query = this.qformer.forward(gpu, this.queryTokens, qformerIds, image);
    const out = this.hooks.run('projector.out', this.languageProjection.forward(gpu, query));
    gpu.release(image, query);
    return out;
  }

  /** Prefill of a prepared input; returns the final-normed hidden states [S, d]. */
  forward(gpu: Gpu, x: VlmInput, opts: VlmForwardOptions = {}): Tensor {
    if (!x.pixels || !x.qformerIds) throw new UserError('InstructBLIP needs an image and the Q-Former instruction');
    const px = gpu.upload(x.pixels.data, x.pixels.shape, 'pixel_values');
    const features = this.imageFeatures(gpu, px, x.qformerIds);
    gpu.release(px);
    return decodeWithFeatures(gpu, this.languageModel, this.hooks, x, features, opts);
  }
}

/** The dump contract's tower part (README, "dump"). */
export function instructBlipDumpPoints(cfg: InstructBlipConfig): [string, string][] {
  const Lv = cfg.vision_config.num_hidden_layers;
  const Lq = cfg.qformer_config.num_hidden_layers;
  const v = (site: string, l?: number) => actName(site, l, 'vision');
  const q = (site: string, l?: number) => actName(site, l, 'qformer');
  return [
    ['vision_hidden_states.0', v('resid_pre', 0)],
    ...Array.from({ length: Lv }, (_, l): [string, string] => [`vision_hidden_states.${l + 1}`, v('resid_post', l)]),
    ['vision_last_hidden_state', v('post_layernorm')],
    ['qformer_hidden_states.0', q('embed')],
    ...Array.from({ length: Lq }, (_, l): [string, string] => [`qformer_hidden_states.${l + 1}`, q('resid_post', l)]),
    ['query_output', q('query_output')],
    ['image_features', 'projector.out'],
  ];
}

/** An InstructBLIP checkpoint folder as VlmFiles (called by the registry once the folder is validated). */
export function instructBlipFiles(c: OpenedCheckpoint, cfg: InstructBlipConfig, qformerTokenizer: QformerTokenizer | null): VlmFiles {
  const Q = cfg.num_query_tokens;
  // the token the processor writes at the query positions; its embedding is replaced, so
  // when a checkpoint names none (older hub revisions), any id serves — 0 is used
  const imageToken = cfg.image_token_index ?? c.tokenizer?.tryTokenId('<image>') ?? null;
  const info: FamilyInfo = {
    name: c.dir.name,
    config: cfg,
    lm: cfg.text_config,
    tokenizer: c.tokenizer,
    processor: c.processor,
    visualTokens: `the ${Q} Q-Former query outputs (through language_projection), at positions 0–${Q - 1}, before BOS`,
    promptFor: (question) => question,
    prepare(p, image, opts) {
      if (p.chat) throw new UserError('--chat: InstructBLIP checkpoints have no chat template; the prompt is the instruction as is');
      if (!image) throw new UserError('InstructBLIP needs an image (--image)');
      const pixels = pixelValues(c, image, cfg.vision_config.image_size, opts);
      const ids = lmIds(c, cfg, imageToken, p);
      const qformerIds = qformerInputIds(c, cfg, qformerTokenizer, p);
      const groups = positionGroups(ids, [0, Q], c.tokenizer?.bosId ?? null);
      // the whole prompt is the instruction: every token after BOS (unknown for given ids)
      if (p.inputIds === undefined) groups.question = [groups.bos === null ? Q : groups.bos + 1, ids.length];
      return { ids, qformerIds, pixels, groups };
    },
    decode: (ids) => decodeIds(c.tokenizer, ids),
  };
  return vlmFiles(c, info, (w) => InstructBlipForConditionalGeneration.load(w, cfg));
}

/** LM ids with the Q image tokens in front. */
function lmIds(c: OpenedCheckpoint, cfg: InstructBlipConfig, imageToken: number | null, p: PromptSpec): number[] {
  const Q = cfg.num_query_tokens;
  let text: number[];
  if (p.inputIds !== undefined) {
    const ids = lmInputIds(p.inputIds, cfg.text_config);
    const at = imageToken === null ? [] : ids.flatMap((t, i) => (t === imageToken ? [i] : []));
    if (at.length === 0) text = ids;
    else if (at.length === Q && at[Q - 1] === Q - 1) text = ids.slice(Q);
    else {
      throw new UserError(
        `--input-ids has ${at.length} image tokens (id ${imageToken}) at positions ${at.slice(0, 8).join(',')}${at.length > 8 ? ',…' : ''}; ` +
          `give none (the ${Q} query positions are prepended) or exactly ${Q} at the start`,
      );
    }
  } else if (p.prompt !== undefined) {
    text = needTokenizer(c).encode(p.prompt);
    if (imageToken !== null && text.includes(imageToken)) throw new UserError(`the prompt contains the image token (id ${imageToken}); the ${Q} query positions are placed in front by phaselens`);
  } else {
    throw new UserError('a prompt is needed: --prompt TEXT (the instruction) or --input-ids 1,2,3');
  }
  const ids = [...Array(Q).fill(imageToken ?? 0), ...text];
  checkContext(ids, cfg.text_config);
  return ids;
}

function qformerInputIds(c: OpenedCheckpoint, cfg: InstructBlipConfig, tok: QformerTokenizer | null, p: PromptSpec): number[] {
  const q = cfg.qformer_config;
  let ids: number[];
  if (p.qformerInputIds !== undefined) ids = parseInputIds(p.qformerInputIds, q.vocab_size, '--qformer-input-ids');
  else if (p.prompt !== undefined) {
    if (!tok) throw new UserError(`${c.dir.name}: no Q-Former tokenizer (expected the folder qformer_tokenizer/ with tokenizer.json or vocab.txt, as in Salesforce/instructblip-*); pass --qformer-input-ids instead`);
    ids = tok.encodeQformer(p.prompt);
  } else {
    throw new UserError('the Q-Former needs the instruction: --prompt TEXT or --qformer-input-ids 101,…,102');
  }
  if (ids.length > q.max_position_embeddings) {
    throw new UserError(`the Q-Former instruction is ${ids.length} tokens, longer than qformer_config.max_position_embeddings = ${q.max_position_embeddings}`);
  }
  return ids;
}

/** Every tensor of an InstructBlipForConditionalGeneration checkpoint (modeling_instructblip.py and its conversion script). */
export function instructBlipTensors(c: InstructBlipConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  evaVisionTensors(out, 'vision_model', c.vision_config);
  out.push({ name: 'query_tokens', shape: [1, c.num_query_tokens, c.qformer_config.hidden_size] });
  qformerTensors(out, 'qformer', c.qformer_config);
  linearTensors(out, 'language_projection', c.text_config.hidden_size, c.qformer_config.hidden_size, true);
  llamaTensors(out, 'language_model', c.text_config);
  return out;
}

/** The key layout of InstructBLIP folders (src/io/layouts.ts): the published Salesforce folders; transformers 4 and 5 save_pretrained write the same names. */
export const INSTRUCTBLIP_LAYOUTS: readonly Layout[] = [
  {
    id: 'hub',
    writtenBy: 'the Salesforce checkpoints on the hub; transformers 4 and 5 save_pretrained',
    rules: same('vision_model.', 'query_tokens', 'qformer.', 'language_projection.', 'language_model.model.', 'language_model.lm_head.'),
  },
];

