/**
 * Greedy generation with a KV cache on the GPU, for any family: the prefill goes through
 * `Vlm.forward` (towers, splice, decoder), each new token through the decoder alone.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { mergeTopk, topk } from '../ops/topk.ts';
import type { DecoderForwardOptions, DecoderLm, Vlm, VlmInput } from './vlm.ts';

/** Greedy next token from the last row of hidden [S, d] (argmax over all lm_head parts). */
export async function greedyNext(gpu: Gpu, lm: DecoderLm, hidden: Tensor): Promise<number> {
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
  /** Pipelines created inside the timed prefill and decode: > 0 means compilation is in those times. */
  compiled: { prefill: number; decode: number };
}

/** EOS ids: text_config.eos_token_id, else the tokenizer's. */
export function eosIds(m: Pick<Vlm, 'lm' | 'tokenizer'>): Set<number> {
  return new Set([m.lm.eos_token_id ?? m.tokenizer?.eosId].flat().filter((e): e is number => e !== null && e !== undefined));
}

export interface GenerateOptions {
  /** Stop after an EOS token (default true); false runs all maxNew steps, as HF's generate with eos_token_id=None. */
  stopAtEos?: boolean;
  /**
   * Additive attention masks (attention knockout) of each forward: the prefill's rows
   * q0 = 0 … S−1, then each step's one row q0 = its position, against keys 0 … q0 + rows − 1
   * ([rows, q0 + rows] per layer, as DecoderForwardOptions.mask). The caller owns the tensors.
   */
  mask?: (q0: number, rows: number) => DecoderForwardOptions['mask'];
  /** Called with the prefill's final-normed hidden states [S, d] before the first token is read (the caller must not release them). */
  onPrefill?: (hidden: Tensor) => Promise<void>;
}

/** Greedy decoding with the KV cache on the GPU; stops at EOS (unless told not to) or after maxNew tokens. */
export async function generate(gpu: Gpu, m: Vlm, x: VlmInput, maxNew: number, onToken?: (id: number) => void, opts: GenerateOptions = {}): Promise<Generation> {
  const lm = m.languageModel;
  const eos = opts.stopAtEos === false ? new Set<number>() : eosIds(m);
  const room = lm.cfg.max_position_embeddings - x.ids.length;
  if (maxNew > room) throw new UserError(`${x.ids.length} prompt tokens + ${maxNew} new tokens exceed max_position_embeddings = ${lm.cfg.max_position_embeddings}`);
  const cache = lm.createCache(gpu, x.ids.length + maxNew);
  const created = () => gpu.pipelines.created.count;
  const c0 = created();
  const t0 = performance.now();
  let hidden = m.forward(gpu, x, { cache, mask: opts.mask?.(0, x.ids.length) });
  await opts.onPrefill?.(hidden);
  let next = await greedyNext(gpu, lm, hidden);
  const t1 = performance.now();
  const c1 = created();
  const tokens: number[] = [];
  while (tokens.length < maxNew) {
    tokens.push(next);
    onToken?.(next);
    if (eos.has(next) || tokens.length === maxNew) break;
    gpu.release(hidden);
    const ids = gpu.upload(Int32Array.of(next), [1], 'next_id');
    const e = lm.embed(gpu, ids);
    hidden = lm.forward(gpu, e, { pos0: cache.length, cache, mask: opts.mask?.(cache.length, 1) });
    gpu.release(ids, e);
    next = await greedyNext(gpu, lm, hidden);
  }
  gpu.release(hidden, ...cache.k, ...cache.v);
  return { tokens, prefillMs: t1 - t0, decodeMs: performance.now() - t1, compiled: { prefill: c1 - c0, decode: created() - c1 } };
}

/**
 * `generate` timed as the CLI reports it: an untimed pass first (the prefill and one decode
 * step, EOS ignored) creates every pipeline the run uses, and drivers that compile lazily
 * (lavapipe) compile at its first dispatches, so prefillMs and decodeMs are steady-state
 * times; `compiled` says whether a pipeline was still created while timed.
 */
export async function generateTimed(gpu: Gpu, m: Vlm, x: VlmInput, maxNew: number): Promise<Generation> {
  await generate(gpu, m, x, Math.min(2, maxNew), undefined, { stopAtEos: false });
  return generate(gpu, m, x, maxNew);
}
