/**
 * The narrow-gate measures (arXiv 2412.06646), per layer, in the forward pass:
 *
 * - Modality separation: the distribution of |cos(h_i, h_j)| over every image token i ×
 *   text token j of each hidden state (HF index 0..L, and the last layer before the final
 *   norm), as a GPU histogram (ops/pair-cos-hist.ts) read back once: median and quartiles
 *   with the bin width as resolution.
 * - Cross-modal attention share: for every text query after the image (the text that can
 *   see it), each head's softmax row from the layer's own q and k (after the position
 *   encoding, as at the hook points `lm.blocks.{l}.attn.q|k`; the sliding window where
 *   the model has one) — `attentionRow` as norm attention uses it — reduced at once to
 *   its head-averaged mass on each image-side position group (ops/group-mass.ts). No
 *   attention map is stored: one row lives on the GPU at a time, and the result is
 *   [layers × queries, groups].
 *
 * Image-side position groups (`gatePositions`; a family has those its sequence holds):
 *   start-of-image   the start-of-image token (Chameleon's <racm3:break>)
 *   internal-image   the image tokens but the last (LLaVA: the patches but the last)
 *   last-image       the last image token (LLaVA: the last patch)
 *   newline          LLaVA-NeXT's image_newline tokens
 *   end-of-image     the end-of-image token (Chameleon's <eoss>: the study's gate)
 * Their shares are normalised over the whole image side, so they sum to 1 per layer.
 *
 * - For neighbourhood overlap (analysis/neighbourhood-overlap.ts, over a data set): the
 *   rows of the candidate positions (`overlapCandidates`: the one-position groups) at
 *   every hidden state, copied on the GPU into one [L + 1, P, d] tensor and read back
 *   once — never a whole hidden state.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';
import { hiddenStateIndex, prenormHook } from '../hooks/hidden-states.ts';
import type { DecoderLm, PositionGroups } from '../models/vlm.ts';
import { attentionRow } from '../ops/attention.ts';
import { slidingWindowMask } from '../ops/attention-mask.ts';
import { contextSets } from '../ops/contextualization.ts';
import { groupMass, keyGroups } from '../ops/group-mass.ts';
import { histQuantiles, pairCosHist, pairCosHistResult, type HistQuantiles } from '../ops/pair-cos-hist.ts';

export const GATE_POSITIONS = ['start-of-image', 'internal-image', 'last-image', 'newline', 'end-of-image'] as const;
export type GatePosition = (typeof GATE_POSITIONS)[number];

export interface GateGroup {
  name: GatePosition;
  positions: number[];
}

/** The image tokens proper: the visual span without LLaVA-NeXT's newlines. */
export function imageTokens(g: PositionGroups): number[] {
  const nl = new Set(g.newlines);
  const out: number[] = [];
  for (let i = g.image[0]; i < g.image[1]; i++) if (!nl.has(i)) out.push(i);
  return out;
}

/** The image-side groups this input has, in sequence order of their kind (file header). */
export function gatePositions(g: PositionGroups): GateGroup[] {
  const img = imageTokens(g);
  if (img.length === 0) throw new UserError('the gate measures need an image: this input has no image tokens');
  const all: GateGroup[] = [
    { name: 'start-of-image', positions: g.imageStart === null ? [] : [g.imageStart] },
    { name: 'internal-image', positions: img.slice(0, -1) },
    { name: 'last-image', positions: img.slice(-1) },
    { name: 'newline', positions: g.newlines },
    { name: 'end-of-image', positions: g.imageEnd === null ? [] : [g.imageEnd] },
  ];
  return all.filter((x) => x.positions.length > 0);
}

/**
 * The groups `names` asks for (all the input has when empty): a name that is not a gate
 * position, or one this model's sequence lacks, is refused naming the groups it has.
 */
export function selectGatePositions(names: readonly string[], g: PositionGroups, model: string): GateGroup[] {
  const have = gatePositions(g);
  for (const n of names) {
    if (!(GATE_POSITIONS as readonly string[]).includes(n)) throw new UserError(`unknown gate position "${n}" (known: ${GATE_POSITIONS.join(', ')})`);
    if (!have.some((x) => x.name === n)) throw new UserError(`gate position "${n}": ${model} has no such position in its sequence; it has ${have.map((x) => x.name).join(', ')}`);
  }
  return names.length ? have.filter((x) => names.includes(x.name)) : have;
}

/**
 * Neighbourhood overlap's candidates: the image-side groups of one position that can see
 * the image — last-image, end-of-image (start-of-image precedes the image: in a causal
 * model its rows are the same for every image).
 */
export function overlapCandidates(side: readonly GateGroup[]): GateGroup[] {
  return side.filter((x) => x.positions.length === 1 && x.name !== 'start-of-image');
}

/** The text queries whose attention is measured: text positions after the whole image side. */
export function gateQueries(g: PositionGroups): number[] {
  const end = Math.max(...gatePositions(g).flatMap((x) => x.positions));
  const q = g.text.filter((i) => i > end);
  if (q.length === 0) throw new UserError('the gate measures need text after the image (the queries whose attention to it is measured); this prompt ends with the image');
  return q;
}

/** The separation's text set: text positions but the start/end-of-image tokens (and BOS with dropBos). */
export function separationText(g: PositionGroups, dropBos: boolean): number[] {
  if (dropBos && g.bos === null) throw new UserError('--drop-bos: this prompt has no BOS token (or, without a tokenizer, it cannot be told which one it is)');
  return g.text.filter((i) => i !== g.imageStart && i !== g.imageEnd && !(dropBos && i === g.bos));
}

export interface SeparationCurve {
  /** Per HF hidden-state index 0..L. */
  q1: number[];
  median: number[];
  q3: number[];
  last_layer_prenorm: { q1: number; median: number; q3: number };
  /** Pairs counted per hidden state (m·n, less pairs with an all-zero row). */
  pairs: number[];
}

export interface AttentionShare {
  /** Per decoder layer 0..L−1, for each group asked for. */
  groups: Record<string, { positions: number[]; share: number[]; per_token: number[]; of_all: number[] }>;
  /** Per layer: the text queries' mean attention on every image-side position (of their total, 1). */
  image_side_of_all: number[];
}

export interface GateProbeOptions {
  /** Image tokens of the separation. */
  image: number[];
  /** Text tokens of the separation. */
  text: number[];
  /** Every image-side group (the normalisation) and the ones to report. */
  side: GateGroup[];
  report: GateGroup[];
  queries: number[];
  bins: number;
  /** Positions whose rows to keep at every hidden state (neighbourhood overlap), or none. */
  rows?: number[];
}

const QK = /^lm\.blocks\.(\d+)\.attn\.(q|k)$/;

export function gateProbe(gpu: Gpu, lm: DecoderLm, o: GateProbeOptions) {
  const L = lm.cfg.num_hidden_layers;
  const rowOf = hiddenStateIndex(L);
  rowOf.set(prenormHook(L), L + 1);
  const sets = contextSets(gpu, o.image, o.text, 'gate.separation_sets');
  const hist = pairCosHistResult(gpu, L + 2, o.bins, 'gate.cos_hist');
  const G = o.side.length;
  const nQ = o.queries.length;
  const mass = gpu.tensor([L * nQ, G], 'f32', 'gate.attention_mass');
  let keys: Tensor | undefined;
  let q: Tensor | undefined;

  const P = o.rows?.length ?? 0;
  let kept: Tensor | undefined;
  const separation: HookFn = (h, name) => {
    const r = rowOf.get(name)!;
    pairCosHist(gpu, h, sets, hist, r);
    if (!P || r > L) return;
    const d = h.shape[h.shape.length - 1];
    kept ??= gpu.tensor([L + 1, P, d], 'f32', 'gate.candidate_rows');
    o.rows!.forEach((pos, i) => gpu.copy(h, kept!, pos * d, (r * P + i) * d, d));
  };
  const attention: HookFn = (t, name) => {
    const [, ls, site] = name.match(QK)!;
    if (site === 'q') {
      q = t;
      return;
    }
    const l = Number(ls);
    const seq = t.shape[0];
    keys ??= keyGroups(gpu, seq, o.side.map((x) => x.positions), 'gate.key_groups');
    const { window } = lm.normAttention(l);
    const mask = window !== null && o.queries.some((i) => i + 1 > window) ? slidingWindowMask(gpu, seq, 0, seq, window) : undefined;
    o.queries.forEach((query, qi) => {
      const alpha = attentionRow(gpu, q!, t, { causal: true, qPos0: 0, query, mask, name: `gate.${l}.alpha` });
      groupMass(gpu, alpha, keys!, mass, l * nQ + qi);
      gpu.release(alpha);
    });
    gpu.release(mask);
    q = undefined;
  };
  const hooks: [NameFilter, HookFn][] = [
    [(name) => rowOf.has(name), separation],
    [(name) => QK.test(name), attention],
  ];

  async function result(): Promise<{ separation: SeparationCurve; attention: AttentionShare; rows?: { data: Float32Array; shape: number[] } }> {
    const counts = (await gpu.read(hist)) as Uint32Array;
    const m = await gpu.readF32(mass);
    const candidateRows = kept && { data: await gpu.readF32(kept), shape: [...kept.shape] };
    gpu.release(sets.idx, hist, mass, keys, kept);
    const bins = o.bins;
    const rows: HistQuantiles[] = Array.from({ length: L + 2 }, (_, r) => histQuantiles(counts.subarray(r * bins, (r + 1) * bins)));
    const curve = rows.slice(0, L + 1);
    const separation: SeparationCurve = {
      q1: curve.map((r) => r.q1),
      median: curve.map((r) => r.median),
      q3: curve.map((r) => r.q3),
      last_layer_prenorm: { q1: rows[L + 1].q1, median: rows[L + 1].median, q3: rows[L + 1].q3 },
      pairs: curve.map((r) => r.n),
    };
    // mean over queries of each group's head-averaged mass, per layer
    const mean = (l: number, g: number) => {
      let s = 0;
      for (let qi = 0; qi < nQ; qi++) s += m[(l * nQ + qi) * G + g];
      return s / nQ;
    };
    const layers = Array.from({ length: L }, (_, l) => l);
    const side = layers.map((l) => o.side.reduce((s, _, g) => s + mean(l, g), 0));
    const groups: AttentionShare['groups'] = {};
    for (const r of o.report) {
      const g = o.side.findIndex((x) => x.name === r.name);
      const ofAll = layers.map((l) => mean(l, g));
      const share = ofAll.map((v, l) => v / side[l]);
      groups[r.name] = { positions: r.positions, share, per_token: share.map((v) => v / r.positions.length), of_all: ofAll };
    }
    return { separation, attention: { groups, image_side_of_all: side }, ...(candidateRows && { rows: candidateRows }) };
  }
  return { hooks, result };
}
