/**
 * Greedy generation with a KV cache on the GPU, for any family: the prefill goes through
 * `Vlm.forward` (towers, splice, decoder), each new token through the decoder alone.
 */
import type { Gpu } from '../gpu/context.ts';
import { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import { mergeTopk, topk } from '../ops/topk.ts';
import type { DecoderForwardOptions, DecoderLm, Vlm, VlmInput } from './vlm.ts';

/**
 * The greedy next token of a forward, recorded: lm_head and top-1 of the last row of hidden
 * [S, d], its readback started (`token`). With one lm_head part the token's id also stays on
 * the GPU (`id`, i32 [1], owned by the caller: `release()` once a step that reads it is
 * recorded), so the next step can be recorded before the host knows the token.
 */
interface NextToken {
  token: Promise<number>;
  id?: Tensor;
  release(): void;
}

function recordNext(gpu: Gpu, lm: DecoderLm, hidden: Tensor): NextToken {
  const [S, d] = hidden.shape;
  // a decode step's hidden is its last row already
  const last = S === 1 ? hidden : gpu.tensor([1, d], 'f32', 'last_hidden', { fullyWritten: true }); // by the copy
  if (last !== hidden) gpu.copy(hidden, last, (S - 1) * d, 0, d);
  const parts = lm.logits(gpu, last).map((p) => ({ p, r: topk(gpu, p.tensor, 1, p.colStart) }));
  if (last !== hidden) gpu.release(last);
  // a part's top-1 id is the vocabulary id (topk adds colStart); u32 below 2³¹ reads the same as i32
  const owner = parts.length === 1 ? parts[0].r.ids : undefined;
  // every part's results in one round trip
  const token = gpu.readAll(parts.flatMap(({ r }) => [r.values, r.ids, r.stats])).then((got) => {
    const read = parts.map((_, i) => ({ values: got[3 * i] as Float32Array, ids: got[3 * i + 1] as Uint32Array, stats: got[3 * i + 2] as Float32Array }));
    for (const { p, r } of parts) gpu.release(p.tensor, r.values, r.stats, ...(r.ids === owner ? [] : [r.ids]));
    return mergeTopk(read, 1, 1).ids[0][0];
  });
  return { token, id: owner && new Tensor(owner.buffer, [1], 'i32', 'next_id'), release: () => gpu.release(owner) };
}

/** Greedy next token from the last row of hidden [S, d] (argmax over all lm_head parts). */
export async function greedyNext(gpu: Gpu, lm: DecoderLm, hidden: Tensor): Promise<number> {
  const next = recordNext(gpu, lm, hidden);
  try {
    return await next.token;
  } finally {
    next.release();
  }
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

/**
 * Greedy decoding with the KV cache on the GPU; stops at EOS (unless told not to) or after
 * maxNew tokens. With one lm_head part each step is recorded one step ahead: the step that
 * reads token t + 1 (from the GPU) is recorded and submitted before token t + 1 is read back,
 * so the host records while the device computes. A step recorded past an EOS is discarded.
 */
export async function generate(gpu: Gpu, m: Vlm, x: VlmInput, maxNew: number, onToken?: (id: number) => void, opts: GenerateOptions = {}): Promise<Generation> {
  const lm = m.languageModel;
  const eos = opts.stopAtEos === false ? new Set<number>() : eosIds(m);
  const room = lm.cfg.max_position_embeddings - x.ids.length;
  if (maxNew > room) throw new UserError(`${x.ids.length} prompt tokens + ${maxNew} new tokens exceed max_position_embeddings = ${lm.cfg.max_position_embeddings}`);
  const cache = lm.createCache(gpu, x.ids.length + maxNew); // a step is recorded ahead only while it is below maxNew
  const created = () => gpu.pipelines.created.count;
  const c0 = created();
  const t0 = performance.now();
  const prefill = m.forward(gpu, x, { cache, mask: opts.mask?.(0, x.ids.length) });
  await opts.onPrefill?.(prefill);
  /** A recorded forward: its hidden states and its next token. */
  type Step = { hidden: Tensor; next: NextToken };
  const done = (s: Step | undefined) => {
    if (!s) return;
    gpu.release(s.hidden);
    s.next.release();
  };
  /** The decode step that reads the token `from` produced: from the GPU when it has it, else from `token`. */
  const stepAfter = (from: Step, token?: number): Step => {
    const ids = from.next.id ?? gpu.upload(Int32Array.of(token!), [1], 'next_id');
    const e = lm.embed(gpu, ids);
    const hidden = lm.forward(gpu, e, { pos0: cache.length, cache, mask: opts.mask?.(cache.length, 1) });
    gpu.release(e, ...(from.next.id ? [] : [ids]));
    return { hidden, next: recordNext(gpu, lm, hidden) };
  };
  let cur: Step = { hidden: prefill, next: recordNext(gpu, lm, prefill) };
  let next = await cur.next.token;
  const t1 = performance.now();
  const c1 = created();
  const tokens: number[] = [];
  let ahead: Step | undefined;
  try {
    while (tokens.length < maxNew) {
      tokens.push(next);
      onToken?.(next);
      if (eos.has(next) || tokens.length === maxNew) break;
      const fed = ahead ?? stepAfter(cur, next);
      done(cur);
      cur = fed;
      // the step after, recorded before cur's token is on the host (not past maxNew)
      ahead = cur.next.id && tokens.length + 1 < maxNew ? stepAfter(cur) : undefined;
      next = await cur.next.token;
    }
  } finally {
    if (ahead) await ahead.next.token.catch(() => undefined); // its readback is in flight
    done(ahead);
    done(cur);
    gpu.release(...cache.k, ...cache.v);
  }
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
