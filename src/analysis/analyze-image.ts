/**
 * One image through the instrumented forward: the probes subscribe to hook points, the
 * model runs once (prefill), and only the small per-layer results are read back. Returns
 * the per-image metrics object (schema in README, "Per-image metrics JSON").
 */
import type { Gpu } from '../gpu/context.ts';
import { UserError } from '../errors.ts';
import type { RgbImage } from '../io/image.ts';
import type { Capabilities, PromptSpec, Vlm } from '../models/vlm.ts';
import { contextualizationProbe } from '../probes/contextualization.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';
import { logitLensProbe } from '../probes/logit-lens.ts';
import { finiteProbe } from '../probes/finite.ts';
import { normAttentionProbe } from '../probes/norm-attention.ts';
import { VERSION } from '../version.ts';
import { segmentPhases } from './phases.ts';
import { DEFAULT_WORDS, logitLensRecall, type WordOptions } from './recall.ts';
import { canonicalSpec, resolveLens, type LensSpecs } from './lens-spec.ts';
import { describePrecision } from '../ops/precision.ts';

/**
 * Which image-feature positions count as visual tokens: `all` (every position the image
 * features fill, LLaVA-NeXT's image_newline tokens included) or `patches` (the newlines
 * left out; on LLaVA-1.5 the same set as `all`). Families whose visual tokens are no patches
 * (InstructBLIP's query outputs, Chameleon's VQ codes) refuse `patches`.
 */
export type VisualTokenSet = 'all' | 'patches';
export const VISUAL_TOKEN_SETS: readonly VisualTokenSet[] = ['all', 'patches'];

/** The question `analyze` asks when none is given, put in the family's usual form by `promptFor`. */
export const DEFAULT_PROMPT = 'Describe the image.';

export interface AnalyzeOptions extends LensSpecs {
  prompt: PromptSpec;
  dropBos: boolean;
  /** Default `all`. */
  visualTokens?: VisualTokenSet;
  /** Query position for norm-based attention (default: the last token). */
  query?: number;
  topk: number;
  padToSquare: boolean;
  /** Moving-average window for the phase segmentation (1 = none). */
  smooth: number;
  words?: WordOptions;
}

export interface AnalyzeItem {
  id: string;
  image: string;
  captions: string[];
}

/** `image`: the item's image, decoded by the caller (a file under Node, a File in the page). */
export async function analyzeImage(gpu: Gpu, m: Vlm, item: AnalyzeItem, image: RgbImage, o: AnalyzeOptions): Promise<Record<string, unknown>> {
  const x = m.prepare(o.prompt, image, { padToSquare: o.padToSquare });
  const { groups } = x;
  const seq = x.ids.length;
  if (o.dropBos && groups.bos === null) throw new UserError('--drop-bos: this prompt has no BOS token (or, without a tokenizer, it cannot be told which one it is)');
  const text = groups.text.filter((i) => !(o.dropBos && i === groups.bos));
  const query = o.query ?? groups.last;
  if (!Number.isInteger(query) || query < 0 || query >= seq) throw new UserError(`--query ${query} is outside the sequence (0..${seq - 1})`);

  const set = o.visualTokens ?? 'all';
  checkVisualTokens(set, m.capabilities);
  // visual tokens counted from the first image position; `patches` leaves the newlines out
  const newline = new Set(set === 'patches' ? groups.newlines.map((p) => p - groups.image[0]) : []);
  const nVisual = groups.image[1] - groups.image[0];
  const visual = Array.from({ length: nVisual }, (_, p) => p).filter((p) => !newline.has(p));

  const lm = m.languageModel;
  const L = lm.cfg.num_hidden_layers;
  const ctx = contextualizationProbe(gpu, L, visual.map((p) => groups.image[0] + p), text);
  const lensAsked = resolveLens(o, L, nVisual);
  const positions = lensAsked.positions.filter((p) => !newline.has(p));
  const cover = positions.length ? { layers: lensAsked.layers, positions } : { layers: [], positions: [] };
  const lens = logitLensProbe(gpu, lm, groups.image, o.topk, cover);
  const attn = normAttentionProbe(gpu, lm, query);
  const finite = finiteProbe(gpu, m.hooks);
  const hooks: [NameFilter, HookFn][] = [...ctx.hooks, ...lens.hooks, ...attn.hooks, ...finite.hooks];
  await m.hooks.withHooks(hooks, async () => {
    gpu.release(m.forward(gpu, x));
  });
  const bad = await finite.result();
  const contextualization = await ctx.result();
  const logit_lens = await lens.result();
  const norm_attention = await attn.result();
  if (bad) throw new UserError(`non-finite values (NaN or Inf) in the activations: ${bad.count} at ${bad.at}, the first hook point where they appear`);
  const words = o.words ?? DEFAULT_WORDS;
  // recall[l] for every hidden-state index l = 0..L, over the covered visual tokens; null at layers the lens did not cover
  let recall: (number | null)[] | undefined;
  if (item.captions.length && m.tokenizer && cover.layers.length) {
    const r = logitLensRecall(logit_lens.top_ids, (id) => pieceOf(m, id), item.captions, words);
    recall = Array<number | null>(L + 1).fill(null);
    cover.layers.forEach((l, i) => (recall![l] = r[i]));
  }
  const phases = segmentPhases(contextualization.inter, o.smooth);
  return {
    phaselens_version: VERSION,
    model: m.name,
    model_family: m.family,
    image: item.image,
    id: item.id,
    captions: item.captions,
    options: {
      weight_dtypes: m.weightDtypes,
      precision: m.precision,
      compute: describePrecision(m.precision),
      drop_bos: o.dropBos,
      visual_tokens: set,
      query,
      k: o.topk,
      lens_layers: canonicalSpec(cover.layers, L + 1),
      lens_positions: canonicalSpec(cover.positions, nVisual),
      chat: !!o.prompt.chat,
      prompt: o.prompt.prompt ?? null,
      input_ids: o.prompt.inputIds ?? null,
      qformer_input_ids: o.prompt.qformerInputIds ?? null,
      pad_to_square: o.padToSquare,
      phase_smoothing: o.smooth,
      hidden_states: 'HF output_hidden_states: 0 = input embeddings, l = output of decoder layer l, L = after the final norm',
      recall_words: { min_length: words.minLength, lowercase: words.lowercase, stop_words: words.stopWords.size },
    },
    tokens: {
      seq,
      image: groups.image,
      newlines: groups.newlines,
      grids: groups.grids,
      n_visual: visual.length,
      text,
      bos: groups.bos,
      ids: x.ids,
      ...(x.qformerIds ? { qformer_ids: x.qformerIds } : {}),
      visual: m.visualTokens,
    },
    contextualization,
    norm_attention,
    logit_lens,
    ...(recall ? { recall } : {}),
    phases: { boundaries: phases.boundaries, labels: phases.labels, directions: phases.directions },
  };
}

/** `--visual-tokens patches` needs visual tokens that are patches. */
export function checkVisualTokens(set: string, caps: Capabilities): asserts set is VisualTokenSet {
  if (!VISUAL_TOKEN_SETS.includes(set as VisualTokenSet)) throw new UserError(`--visual-tokens must be one of ${VISUAL_TOKEN_SETS.join(', ')}, not "${set}"`);
  if (set === 'patches' && !caps.patchGrid) throw new UserError('--visual-tokens patches: this family\'s visual tokens are not image patches (they have no patch grid); use all');
}

/** The vocabulary piece of an lm_head row; rows past the tokenizer (LLaVA pads 32002 → 32064) have none. */
function pieceOf(m: Vlm, id: number): string {
  return m.tokenizer && id < m.tokenizer.vocabSize ? m.tokenizer.idToToken(id) : '';
}
