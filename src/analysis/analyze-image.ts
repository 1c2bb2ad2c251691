/**
 * One image through the instrumented forward: the probes subscribe to hook points, the
 * model runs once (prefill), and only the small per-layer results are read back. Returns
 * the per-image metrics object (schema in README, "Per-image metrics JSON").
 */
import type { Gpu } from '../gpu/context.ts';
import { UserError } from '../errors.ts';
import type { LoadedLlava } from '../models/load.ts';
import { loadPixels, prefill, promptIds, type PromptOptions } from '../models/run.ts';
import { contextualizationProbe } from '../probes/contextualization.ts';
import type { HookFn, NameFilter } from '../probes/hooks.ts';
import { logitLensProbe } from '../probes/logit-lens.ts';
import { normAttentionProbe } from '../probes/norm-attention.ts';
import { VERSION } from '../version.ts';
import { segmentPhases } from './phases.ts';
import { DEFAULT_WORDS, logitLensRecall, type WordOptions } from './recall.ts';

export interface AnalyzeOptions {
  prompt: PromptOptions;
  dropBos: boolean;
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

export async function analyzeImage(gpu: Gpu, m: LoadedLlava, item: AnalyzeItem, o: AnalyzeOptions): Promise<Record<string, unknown>> {
  const pixels = loadPixels(m, item.image, { padToSquare: o.padToSquare });
  const x = m.model.expand(promptIds(m, o.prompt, true), true);
  const seq = x.ids.length;
  const [s, e] = x.image;
  const bos = m.tokenizer.bosId;
  const text = x.ids.map((_, i) => i).filter((i) => (i < s || i >= e) && !(o.dropBos && i === 0 && x.ids[0] === bos));
  const query = o.query ?? seq - 1;
  if (!Number.isInteger(query) || query < 0 || query >= seq) throw new UserError(`--query ${query} is outside the sequence (0..${seq - 1})`);

  const lm = m.model.languageModel;
  const L = lm.cfg.num_hidden_layers;
  const ctx = contextualizationProbe(gpu, L, x.image, text);
  const lens = logitLensProbe(gpu, lm, x.image, o.topk);
  const attn = normAttentionProbe(gpu, lm, query);
  const hooks: [NameFilter, HookFn][] = [...ctx.hooks, ...lens.hooks, ...attn.hooks];
  await m.model.hooks.withHooks(hooks, async () => {
    gpu.release(prefill(gpu, m.model, x, pixels));
  });
  const contextualization = await ctx.result();
  const logit_lens = await lens.result();
  const norm_attention = await attn.result();
  const words = o.words ?? DEFAULT_WORDS;
  const recall = item.captions.length ? logitLensRecall(logit_lens.top_ids, (id) => pieceOf(m, id), item.captions, words) : undefined;
  const phases = segmentPhases(contextualization.inter, o.smooth);
  return {
    phaselens_version: VERSION,
    model: m.dir,
    image: item.image,
    id: item.id,
    captions: item.captions,
    options: {
      weight_dtypes: m.weightDtypes,
      compute: 'f32 activations, f32 accumulation',
      drop_bos: o.dropBos,
      query,
      k: o.topk,
      chat: !!o.prompt.chat,
      prompt: o.prompt.prompt ?? null,
      input_ids: o.prompt.inputIds ?? null,
      pad_to_square: o.padToSquare,
      phase_smoothing: o.smooth,
      hidden_states: 'HF output_hidden_states: 0 = input embeddings, l = output of decoder layer l, L = after the final norm',
      recall_words: { min_length: words.minLength, lowercase: words.lowercase, stop_words: words.stopWords.size },
    },
    tokens: { seq, image: [s, e], text, ids: x.ids },
    contextualization,
    norm_attention,
    logit_lens,
    ...(recall ? { recall } : {}),
    phases: { boundaries: phases.boundaries, labels: phases.labels, directions: phases.directions },
  };
}

/** The vocabulary piece of an lm_head row; rows past the tokenizer (LLaVA pads 32002 → 32064) have none. */
function pieceOf(m: LoadedLlava, id: number): string {
  return id < m.tokenizer.vocabSize ? m.tokenizer.idToToken(id) : '';
}
