/**
 * LogitLens on the visual tokens: at every covered hidden-state index l (default all of
 * 0..L), the covered rows of the image span (default all) go through the final RMSNorm and
 * lm_head, and the top-k ids and softmax probabilities of each row are taken on the GPU.
 * Index L is already normed by the model (HF convention), so it goes to lm_head directly —
 * it is never normed twice. Only [n_rows, k] ids / values / softmax stats per layer and
 * lm_head part are read back. Uncovered layers get no hook (no copy, no matmul); uncovered
 * positions are not copied, so lm_head runs on M = n_rows rows and `linear` picks the
 * matmul variant for that M (`pickMatmulKernel`, the same as every other projection).
 * Restricting the coverage changes nothing about the covered entries: each row's logits
 * depend on that row alone — which also lets the rows go through lm_head in chunks small
 * enough that a chunk's logits [rows, vocab] fit the device's storage-binding limit (e.g.
 * LLaVA-NeXT's ~2k visual tokens × 32k vocab is ~256 MiB, over lavapipe's 128 MiB).
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { DecoderLm } from '../models/vlm.ts';
import { mergeTopk, topk, type TopkResult } from '../ops/topk.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';
import { hiddenStateIndex } from '../hooks/hidden-states.ts';

export interface LogitLensResult {
  k: number;
  /** Covered hidden-state indices, ascending (all of 0..L by default). */
  layers: number[];
  /** Covered visual tokens, ascending, counted from the first one (sequence position tokens.image[0] + p). */
  positions: number[];
  /** [layers.length][positions.length][k]: entry [i][j] is layer layers[i], visual token positions[j]. */
  top_ids: number[][][];
  top_probs: number[][][];
}

/** Ascending indices → [start, end) runs of consecutive ones. */
function runsOf(xs: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const x of xs) {
    const r = runs[runs.length - 1];
    if (r && r[1] === x) r[1]++;
    else runs.push([x, x + 1]);
  }
  return runs;
}

/** Splits `xs` into consecutive slices of at most `size`. */
function chunksOf<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** `cover`: the layers and visual-token positions to run (src/analysis/lens-spec.ts), ascending. */
export function logitLensProbe(gpu: Gpu, lm: DecoderLm, image: [number, number], k: number, cover: { layers: readonly number[]; positions: readonly number[] }) {
  const L = lm.cfg.num_hidden_layers;
  const index = hiddenStateIndex(L);
  const s = image[0];
  const n = cover.positions.length;
  // rows per lm_head call: f32 logits of a whole vocabulary per row must fit one binding
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const chunks = chunksOf(cover.positions, Math.max(1, Math.floor(limit / (4 * lm.cfg.vocab_size))));
  const want = new Set(cover.layers);
  // per covered layer, one entry per chunk of rows, in row order
  const found: { l: number; chunks: { rows: number; parts: TopkResult[] }[] }[] = [];
  const hook: HookFn = (h, name) => {
    const l = index.get(name)!;
    const d = h.shape[1];
    const done: { rows: number; parts: TopkResult[] }[] = [];
    for (const positions of chunks) {
      const rows = gpu.tensor([positions.length, d], 'f32', `logit_lens.${l}.rows`);
      let at = 0;
      for (const [a, b] of runsOf(positions)) {
        gpu.copy(h, rows, (s + a) * d, at * d, (b - a) * d);
        at += b - a;
      }
      let x: Tensor = rows;
      if (l < L) {
        x = lm.finalNorm(gpu, rows);
        gpu.release(rows);
      }
      const parts = lm.logits(gpu, x).map((p) => {
        const r = topk(gpu, p.tensor, Math.min(k, p.tensor.shape[1]), p.colStart);
        gpu.release(p.tensor);
        return r;
      });
      gpu.release(x);
      done.push({ rows: positions.length, parts });
      gpu.flush(); // free this chunk's logits before the next one allocates its own
    }
    found.push({ l, chunks: done });
  };
  const hooks: [NameFilter, HookFn][] = n > 0 && want.size > 0 ? [[(name) => want.has(index.get(name) ?? -1), hook]] : [];

  async function result(): Promise<LogitLensResult> {
    const layers = [...want].sort((a, b) => a - b);
    const slot = new Map(layers.map((l, i) => [l, i]));
    const out: LogitLensResult = { k, layers, positions: [...cover.positions], top_ids: Array(layers.length), top_probs: Array(layers.length) };
    for (const { l, chunks } of found) {
      const ids: number[][] = [];
      const probs: number[][] = [];
      for (const { rows, parts } of chunks) {
        const read = [];
        for (const p of parts) {
          const kk = p.values.shape[1];
          const values = (await gpu.read(p.values)) as Float32Array;
          const pids = (await gpu.read(p.ids)) as Uint32Array;
          const stats = (await gpu.read(p.stats)) as Float32Array;
          gpu.release(p.values, p.ids, p.stats);
          read.push(kk === k ? { values, ids: pids, stats } : padParts(values, pids, stats, rows, kk, k));
        }
        const m = mergeTopk(read, rows, k);
        ids.push(...m.ids);
        probs.push(...m.probs);
      }
      out.top_ids[slot.get(l)!] = ids;
      out.top_probs[slot.get(l)!] = probs;
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
