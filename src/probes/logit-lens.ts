/**
 * LogitLens on the visual tokens: at every hidden-state index l = 0..L, the rows of the
 * image span go through the final RMSNorm and lm_head, and the top-k ids and softmax
 * probabilities of each row are taken on the GPU. Index L is already normed by the model
 * (HF convention), so it goes to lm_head directly — it is never normed twice.
 * Only [n_img, k] ids / values / softmax stats per layer and lm_head part are read back.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { LlamaForCausalLM } from '../models/llama.ts';
import { mergeTopk, topk, type TopkResult } from '../ops/topk.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';
import { hiddenStateIndex } from '../hooks/hidden-states.ts';

export interface LogitLensResult {
  k: number;
  /** [L + 1][n_img][k] */
  top_ids: number[][][];
  top_probs: number[][][];
}

export function logitLensProbe(gpu: Gpu, lm: LlamaForCausalLM, image: [number, number], k: number) {
  const L = lm.cfg.num_hidden_layers;
  const index = hiddenStateIndex(L);
  const [s, e] = image;
  const n = e - s;
  const found: { l: number; parts: TopkResult[] }[] = [];
  const hook: HookFn = (h, name) => {
    const l = index.get(name)!;
    const d = h.shape[1];
    const rows = gpu.tensor([n, d], 'f32', `logit_lens.${l}.rows`);
    gpu.copy(h, rows, s * d, 0, n * d);
    let x: Tensor = rows;
    if (l < L) {
      x = lm.norm.forward(gpu, rows);
      gpu.release(rows);
    }
    const parts = lm.logits(gpu, x).map((p) => {
      const r = topk(gpu, p.tensor, Math.min(k, p.tensor.shape[1]), p.colStart);
      gpu.release(p.tensor);
      return r;
    });
    gpu.release(x);
    found.push({ l, parts });
    gpu.flush(); // free this layer's logits before the next layer allocates its own
  };
  const hooks: [NameFilter, HookFn][] = [[(name) => index.has(name), hook]];

  async function result(): Promise<LogitLensResult> {
    const out: LogitLensResult = { k, top_ids: Array(L + 1), top_probs: Array(L + 1) };
    for (const { l, parts } of found) {
      const read = [];
      for (const p of parts) {
        const kk = p.values.shape[1];
        const values = (await gpu.read(p.values)) as Float32Array;
        const ids = (await gpu.read(p.ids)) as Uint32Array;
        const stats = (await gpu.read(p.stats)) as Float32Array;
        gpu.release(p.values, p.ids, p.stats);
        read.push(kk === k ? { values, ids, stats } : padParts(values, ids, stats, n, kk, k));
      }
      const m = mergeTopk(read, n, k);
      out.top_ids[l] = m.ids;
      out.top_probs[l] = m.probs;
    }
    return out;
  }
  return { hooks, result };
}

/** A part with fewer than k columns: pad its lists with −∞ so the merge sees k entries. */
function padParts(values: Float32Array, ids: Uint32Array, stats: Float32Array, rows: number, kk: number, k: number) {
  const v = new Float32Array(rows * k).fill(-Infinity);
  const i = new Uint32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    v.set(values.subarray(r * kk, (r + 1) * kk), r * k);
    i.set(ids.subarray(r * kk, (r + 1) * kk), r * k);
  }
  return { values: v, ids: i, stats };
}
