/**
 * Norm-based attention of one query row (Kobayashi et al. 2020) at every decoder layer:
 * ‖Σ_h α^h_{q,j} f^h(x_j)‖ and per head ‖α^h_{q,j} f^h(x_j)‖ for every key j, with
 * f^h(x) = (x W_V^h + b_V^h) W_O^h. Computed from the layer's own q, k (after RoPE) and v
 * as they pass their hook points — α for the one query row comes from attentionRow with the
 * same causal scores (and a sliding window's mask where the model has one, Mistral) — so no
 * attention map is ever stored. Results: [L, seq] and [L, H, seq], read back once.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { DecoderLm } from '../models/vlm.ts';
import { attentionRow } from '../ops/attention.ts';
import { slidingWindowMask } from '../ops/attention-mask.ts';
import { headGram, normAttention } from '../ops/norm-attention.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';

export interface NormAttentionResult {
  query: number;
  /** [L][seq] */
  layer: number[][];
  /** [L][H][seq] */
  head: number[][][];
}

const SITE = /^lm\.blocks\.(\d+)\.attn\.(q|k|v)$/;

/** Per-head Gram matrices of W_O depend only on the weights: computed once per model. */
const grams = new WeakMap<Tensor, Tensor>();

export function normAttentionProbe(gpu: Gpu, lm: DecoderLm, query: number) {
  const L = lm.cfg.num_hidden_layers;
  const H = lm.cfg.num_attention_heads;
  const pending = new Map<number, { q?: Tensor; k?: Tensor }>();
  let out: { layer: Tensor; head: Tensor } | undefined;
  const hook: HookFn = (t, name) => {
    const [, ls, site] = name.match(SITE)!;
    const l = Number(ls);
    const p = pending.get(l) ?? {};
    pending.set(l, p);
    if (site === 'q') p.q = t;
    else if (site === 'k') p.k = t;
    else {
      const seq = t.shape[0];
      out ??= { layer: gpu.tensor([L, seq], 'f32', 'norm_attention.layer'), head: gpu.tensor([L, H, seq], 'f32', 'norm_attention.head') };
      const { oProj: wO, window } = lm.normAttention(l);
      // the keys the model's own attention saw: its sliding window, where it binds
      const mask = window !== null && query + 1 > window ? slidingWindowMask(gpu, seq, 0, seq, window) : undefined;
      let gram = grams.get(wO);
      if (!gram) grams.set(wO, (gram = headGram(gpu, wO, H)));
      const alpha = attentionRow(gpu, p.q!, p.k!, { causal: true, qPos0: 0, query, mask, name: `norm_attention.${l}.alpha` });
      normAttention(gpu, alpha, t, wO, { gram, head: out.head, layer: out.layer, row: l });
      gpu.release(alpha, mask);
      pending.delete(l);
    }
  };
  const hooks: [NameFilter, HookFn][] = [[(name) => SITE.test(name), hook]];

  async function result(): Promise<NormAttentionResult> {
    if (!out) throw new Error('norm attention: the forward passed no attention hook');
    const seq = out.layer.shape[1];
    const a = await gpu.readF32(out.layer);
    const b = await gpu.readF32(out.head);
    gpu.release(out.layer, out.head);
    const layer = Array.from({ length: L }, (_, l) => Array.from(a.subarray(l * seq, (l + 1) * seq)));
    const head = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => Array.from(b.subarray((l * H + h) * seq, (l * H + h + 1) * seq))));
    return { query, layer, head };
  }
  return { hooks, result };
}
