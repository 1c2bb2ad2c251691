/**
 * One LLaVA run, from user inputs to GPU tensors: prompt → ids (chat template or raw,
 * or explicit ids), image → pixel values, prefill, and greedy generation with a KV cache.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { chatPrompt } from '../io/chat.ts';
import { preprocessImage, type PixelValues, type PreprocessOptions } from '../io/image-processor.ts';
import { readImageFile } from '../io/load-node.ts';
import { parseInputIds } from '../io/tokenizer.ts';
import { mergeTopk, topk } from '../ops/topk.ts';
import { KvCache, type LlamaForCausalLM } from './llama.ts';
import type { Expanded, LlavaForConditionalGeneration } from './llava.ts';
import type { LlavaFiles, LoadedLlava } from './load.ts';

export interface PromptOptions {
  prompt?: string;
  /** Comma-separated ids: bypasses the tokenizer and the chat template. */
  inputIds?: string;
  chat?: boolean;
}

/** Token ids before image expansion. */
export function promptIds(m: Omit<LlavaFiles, 'report'>, o: PromptOptions, hasImage: boolean): number[] {
  if (o.inputIds !== undefined) {
    if (o.prompt !== undefined) throw new UserError('give either --prompt or --input-ids, not both');
    return parseInputIds(o.inputIds, m.config.text_config.vocab_size);
  }
  if (o.prompt === undefined) throw new UserError('a prompt is needed: --prompt TEXT or --input-ids 1,2,3');
  const text = o.chat ? chatPrompt(m.chatTemplate, o.prompt, { image: hasImage, source: m.dir }) : o.prompt;
  return m.tokenizer.encode(text);
}

export function loadPixels(m: Omit<LlavaFiles, 'report'>, imagePath: string, opts: PreprocessOptions = {}): PixelValues {
  const v = m.config.vision_config;
  const px = preprocessImage(readImageFile(imagePath), m.processor, opts);
  const [, h, w] = px.shape;
  if (h !== v.image_size || w !== v.image_size) {
    throw new UserError(`${m.dir}/preprocessor_config.json makes ${h}×${w} images but the vision tower expects ${v.image_size}×${v.image_size}`);
  }
  return px;
}

/** Uploads the inputs and records the prefill; returns the final-normed hidden states [S, d]. */
export function prefill(gpu: Gpu, model: LlavaForConditionalGeneration, x: Expanded, pixels: PixelValues | undefined, cache?: KvCache): Tensor {
  const ids = gpu.upload(Int32Array.from(x.ids), [x.ids.length], 'input_ids');
  let features: Tensor | undefined;
  if (pixels) features = model.imageFeatures(gpu, gpu.upload(pixels.data, pixels.shape, 'pixel_values'));
  const embeds = model.hooks.run('lm.embed', model.inputsEmbeds(gpu, ids, x.image, features));
  const hidden = model.languageModel.forward(gpu, embeds, { cache });
  gpu.release(ids, features, embeds);
  return hidden;
}

/** Greedy next token from the last row of hidden [S, d] (argmax over all lm_head parts). */
export async function greedyNext(gpu: Gpu, lm: LlamaForCausalLM, hidden: Tensor): Promise<number> {
  const [S, d] = hidden.shape;
  const last = gpu.tensor([1, d], 'f32', 'last_hidden');
  gpu.copy(hidden, last, (S - 1) * d, 0, d);
  const parts = lm.logits(gpu, last).map((p) => ({ p, r: topk(gpu, p.tensor, 1, p.colStart) }));
  const read = [];
  for (const { p, r } of parts) {
    read.push({
      values: (await gpu.read(r.values)) as Float32Array,
      ids: (await gpu.read(r.ids)) as Uint32Array,
      stats: (await gpu.read(r.stats)) as Float32Array,
    });
    gpu.release(p.tensor, r.values, r.ids, r.stats);
  }
  gpu.release(last);
  return mergeTopk(read, 1, 1).ids[0][0];
}

export interface Generation {
  tokens: number[];
  prefillMs: number;
  decodeMs: number;
}

/** Greedy decoding with the KV cache on the GPU; stops at EOS or after maxNew tokens. */
export async function generate(
  gpu: Gpu, m: LoadedLlava, x: Expanded, pixels: PixelValues | undefined, maxNew: number, onToken?: (id: number) => void,
): Promise<Generation> {
  const lm = m.model.languageModel;
  const eos = new Set([m.config.text_config.eos_token_id ?? m.tokenizer.eosId].flat().filter((e): e is number => e !== null && e !== undefined));
  const room = lm.cfg.max_position_embeddings - x.ids.length;
  if (maxNew > room) throw new UserError(`${x.ids.length} prompt tokens + ${maxNew} new tokens exceed max_position_embeddings = ${lm.cfg.max_position_embeddings}`);
  const cache = KvCache.create(gpu, lm.cfg, x.ids.length + maxNew);
  const t0 = performance.now();
  let hidden = prefill(gpu, m.model, x, pixels, cache);
  let next = await greedyNext(gpu, lm, hidden);
  const t1 = performance.now();
  const tokens: number[] = [];
  while (tokens.length < maxNew) {
    tokens.push(next);
    onToken?.(next);
    if (eos.has(next) || tokens.length === maxNew) break;
    gpu.release(hidden);
    const ids = gpu.upload(Int32Array.of(next), [1], 'next_id');
    const e = lm.embed(gpu, ids);
    hidden = lm.forward(gpu, e, { pos0: cache.length, cache });
    gpu.release(ids, e);
    next = await greedyNext(gpu, lm, hidden);
  }
  gpu.release(hidden, ...cache.k, ...cache.v);
  return { tokens, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
}
