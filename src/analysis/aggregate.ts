/**
 * Aggregation of per-image metrics (the `OUT/images/*.json` files) into per-layer
 * statistics: `OUT/aggregate.json` and `OUT/aggregate.csv`.
 *
 * Conventions (also written into aggregate.json under `conventions`):
 *   - layer index l = 0..L follows HF `output_hidden_states`: 0 = input embeddings,
 *     l = output of decoder layer l (1-based), L = after the final norm;
 *     `last_layer_prenorm` is layer L before the final norm.
 *   - mean over the images whose value at that layer is a finite number; `n` counts them.
 *   - std is the SAMPLE standard deviation (divisor n − 1); it is null when n < 2.
 *   - norm attention: `norm_attention.layer[l]` is decoder layer l (0-based, L entries), i.e. the
 *     attention that reads hidden_states[l]. Its image share for one image is
 *       share(l) = Σ_{j ∈ image span} a_l(j) / Σ_{all keys j} a_l(j)
 *     (with `--visual-tokens patches` the image_newline keys count in the denominator only)
 *     with a_l(j) = ‖Σ_h α^h_{qj} f^h(x_j)‖ for the query q (default: the last token);
 *     the query itself and BOS count as keys. The aggregate is the mean of the per-image shares.
 *   - aggregate heatmap (`norm_attention_map`): the element-wise mean of the per-image
 *     `norm_attention.layer` maps when every image has the same token layout (same seq length,
 *     image span and query — the usual case, one prompt per run); otherwise the first image's map.
 *     `source` says which.
 *   - phases: segmentation (src/analysis/phases.ts) of the mean inter-modal curve.
 *   - LogitLens coverage (`logit_lens`): the layers and visual tokens the lens ran on
 *     (`--lens-layers`, `--lens-positions`; default all). recall(l) is over the covered
 *     visual tokens; a layer no image covered has n = 0. `same` is false when the images
 *     were made with different coverage (a folder resumed with other lens flags): then the
 *     first image's coverage is shown and each layer's recall n counts the images that covered it.
 */
import { segmentPhases, type Phases } from './phases.ts';
import { canonicalSpec, coverageOf } from './lens-spec.ts';
import type { PatchGrid } from '../models/vlm.ts';

/** The per-image metrics JSON (see README: "Per-image metrics"). Only the fields used here are typed. */
export interface ImageMetrics {
  model: string;
  /** The family's model_type (models/registry.ts). */
  model_family?: string;
  image: string;
  options: { dtype?: string; drop_bos?: boolean; query?: number | string; k?: number; [key: string]: unknown };
  phaselens_version?: string;
  /** `newlines`, `grids`, `n_visual`: absent in results written before --visual-tokens. */
  tokens: { seq: number; image: [number, number]; newlines?: number[]; grids?: PatchGrid[]; n_visual?: number; text: number[]; visual?: string };
  contextualization: {
    inter: number[];
    intra_image: number[];
    intra_text: number[];
    last_layer_prenorm?: { inter: number; intra_image: number; intra_text: number };
  };
  norm_attention?: { query: number; layer: number[][]; head?: number[][][] };
  /** `layers` / `positions` are absent in results written before the lens could be restricted (then: all). */
  logit_lens?: { k: number; layers?: number[]; positions?: number[]; top_ids: number[][][]; top_probs: number[][][] };
  recall?: (number | null)[];
  phases?: { boundaries: number[]; labels: string[] };
  error?: string;
}

/** Statistics of one quantity at one layer over images. */
export interface Stat {
  mean: number | null;
  /** Sample standard deviation (divisor n − 1); null when n < 2. */
  std: number | null;
  n: number;
}

export interface Aggregate {
  phaselens_version: string | null;
  model: string | null;
  model_family: string | null;
  /** Where the visual tokens sit, in words (from the first image). */
  visual_tokens: string | null;
  /** Options of the first image (all images of a run share them). */
  options: ImageMetrics['options'] | null;
  n_images: number;
  /** Hidden-state indices 0..L. */
  layers: number[];
  inter: Stat[];
  intra_image: Stat[];
  intra_text: Stat[];
  /** Layer L before the final norm. */
  last_layer_prenorm: { inter: Stat; intra_image: Stat; intra_text: Stat } | null;
  /** LogitLens recall per layer 0..L; null when no image has captions. */
  recall: Stat[] | null;
  /** What the LogitLens covered (first image's; see `same`); null when no image has LogitLens results. */
  logit_lens: LensSummary | null;
  /** Decoder layers 0..L−1 (norm_attention.layer index). */
  norm_attention_layers: number[];
  /** Share of the query's norm attention on image keys, per decoder layer; null without norm attention. */
  norm_attention_image_share: Stat[] | null;
  /** Heatmap for the report, [L][seq]. */
  norm_attention_map: {
    source: 'mean' | 'first';
    n: number;
    image: string;
    seq: number;
    query: number;
    image_span: [number, number];
    /**
     * The patch grids of the map's token layout (`tokens.grids`; empty without patches). `box`
     * (where a grid sits in the original image) is null when the mapped images disagree on it.
     */
    grids: (Omit<PatchGrid, 'box'> & { box: PatchGrid['box'] | null })[];
    layer: number[][];
  } | null;
  /** Phases of the mean inter-modal curve. */
  phases: Phases | null;
  conventions: Record<string, string>;
}

export interface LensSummary {
  /** Covered hidden-state indices, ascending. */
  layers: number[];
  /** Covered visual-token positions (0 = first visual token) in canonical form: `all`, `none` or runs like `0:576:4`. */
  positions: string;
  /** Number of covered visual tokens, and of visual tokens in the span. */
  n_positions: number;
  n_visual: number;
  /** Every layer 0..L and every visual token: the paper's method. */
  full: boolean;
  /** Every image was made with this coverage. */
  same: boolean;
}

export interface AggregateOptions {
  /** Moving-average window for the phase segmentation of the mean inter curve (default 1 = none). */
  phaseWindow?: number;
}

export const CONVENTIONS: Record<string, string> = {
  layers:
    'hidden_states index l = 0..L, HF output_hidden_states convention: 0 = input embeddings, l = output of decoder layer l, L = after the final norm; last_layer_prenorm = layer L before the final norm',
  std: 'sample standard deviation (divisor n - 1); null when n < 2',
  n: 'number of images with a finite value at that layer',
  norm_attention_image_share:
    'decoder layer l (0-based): sum of the query token\'s norm-based attention over image keys / sum over all keys (BOS and the query itself included); mean over images',
  norm_attention_map:
    'element-wise mean of per-image norm_attention.layer maps when all images share seq length, image span and query; otherwise the first image',
  phases: 'maximal monotone runs of the mean inter-modal curve (src/analysis/phases.ts)',
  logit_lens:
    'hidden-state indices (layers) and visual-token positions (0 = first visual token) the LogitLens covered; recall(l) is over the covered positions, n = 0 at uncovered layers; same = false when images differ in coverage',
};

/** Mean and sample std of the finite values in xs. */
export function stat(xs: readonly (number | null | undefined)[]): Stat {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: null, std: null, n: 0 };
  let s = 0;
  for (const x of v) s += x;
  const mean = s / n;
  if (n < 2) return { mean, std: null, n };
  let ss = 0;
  for (const x of v) ss += (x - mean) * (x - mean);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/** Per-layer statistics of equally long per-image curves. */
function perLayer(curves: readonly (readonly (number | null)[])[], length: number): Stat[] {
  return Array.from({ length }, (_, l) => stat(curves.map((c) => c[l])));
}

/** share(l) = Σ_{image keys} a / Σ_{all keys} a, per decoder layer; null where the row sums to 0. `skip`: image positions that are no visual tokens. */
export function imageShare(layer: readonly (readonly number[])[], span: readonly [number, number], skip: readonly number[] = []): (number | null)[] {
  const out = new Set(skip);
  return layer.map((row) => {
    let all = 0;
    let img = 0;
    for (let j = 0; j < row.length; j++) {
      all += row[j];
      if (j >= span[0] && j < span[1] && !out.has(j)) img += row[j];
    }
    return all > 0 ? img / all : null;
  });
}

export function aggregate(perImage: readonly ImageMetrics[], opts: AggregateOptions = {}): Aggregate {
  const ok = perImage.filter((m) => !m.error && m.contextualization);
  const first = ok[0];
  const L1 = first ? first.contextualization.inter.length : 0;
  for (const m of ok) {
    for (const key of ['inter', 'intra_image', 'intra_text'] as const) {
      if (m.contextualization[key].length !== L1)
        throw new Error(`aggregate: ${m.image}: contextualization.${key} has ${m.contextualization[key].length} layers, expected ${L1} (all images must come from one model)`);
    }
    if (m.recall && m.recall.length !== L1) throw new Error(`aggregate: ${m.image}: recall has ${m.recall.length} layers, expected ${L1}`);
  }
  const curve = (key: 'inter' | 'intra_image' | 'intra_text') => perLayer(ok.map((m) => m.contextualization[key]), L1);
  const inter = curve('inter');

  const withPre = ok.filter((m) => m.contextualization.last_layer_prenorm);
  const pre = (key: 'inter' | 'intra_image' | 'intra_text') => stat(withPre.map((m) => m.contextualization.last_layer_prenorm![key]));

  const withRecall = ok.filter((m) => m.recall);
  const withNa = ok.filter((m) => m.norm_attention && m.norm_attention.layer.length > 0);
  const L = L1 - 1;
  for (const m of withNa) {
    if (m.norm_attention!.layer.length !== L)
      throw new Error(`aggregate: ${m.image}: norm_attention.layer has ${m.norm_attention!.layer.length} decoder layers, expected ${L}`);
  }

  let map: Aggregate['norm_attention_map'] = null;
  if (withNa.length > 0) {
    const f = withNa[0];
    const same = withNa.every(
      (m) =>
        m.tokens.seq === f.tokens.seq &&
        m.tokens.image[0] === f.tokens.image[0] &&
        m.tokens.image[1] === f.tokens.image[1] &&
        m.norm_attention!.query === f.norm_attention!.query &&
        m.norm_attention!.layer.every((row) => row.length === f.norm_attention!.layer[0].length),
    );
    const use = same ? withNa : [f];
    const layer = f.norm_attention!.layer.map((row, l) =>
      row.map((_, j) => use.reduce((s, m) => s + m.norm_attention!.layer[l][j], 0) / use.length),
    );
    map = {
      source: same ? 'mean' : 'first',
      n: use.length,
      image: same && use.length > 1 ? `mean of ${use.length} images` : f.image,
      seq: f.tokens.seq,
      query: f.norm_attention!.query,
      image_span: [f.tokens.image[0], f.tokens.image[1]],
      grids: (f.tokens.grids ?? []).map((g, i) => (use.every((m) => JSON.stringify(m.tokens.grids?.[i]?.box) === JSON.stringify(g.box)) ? g : { ...g, box: null })),
      layer,
    };
  }

  const withLens = ok.map((m) => ({ m, c: coverageOf(m) })).filter((x) => x.c !== null);
  let lens: LensSummary | null = null;
  if (withLens.length) {
    const { m: f, c } = withLens[0];
    const key = (x: { layers: number[]; positions: number[] }) => JSON.stringify([x.layers, x.positions]);
    const nVisual = f.tokens.image[1] - f.tokens.image[0];
    lens = {
      layers: c!.layers,
      positions: canonicalSpec(c!.positions, nVisual),
      n_positions: c!.positions.length,
      n_visual: nVisual,
      full: c!.layers.length === L1 && c!.positions.length === (f.tokens.n_visual ?? nVisual),
      same: withLens.every((x) => key(x.c!) === key(c!)),
    };
  }

  const meanInter = inter.map((s) => s.mean);
  const phases = L1 >= 2 && meanInter.some((v) => v !== null) ? segmentPhases(meanInter, opts.phaseWindow ?? 1) : null;

  return {
    phaselens_version: first?.phaselens_version ?? null,
    model: first?.model ?? null,
    model_family: first?.model_family ?? null,
    visual_tokens: first?.tokens.visual ?? null,
    options: first?.options ?? null,
    n_images: ok.length,
    layers: Array.from({ length: L1 }, (_, l) => l),
    inter,
    intra_image: curve('intra_image'),
    intra_text: curve('intra_text'),
    last_layer_prenorm: withPre.length ? { inter: pre('inter'), intra_image: pre('intra_image'), intra_text: pre('intra_text') } : null,
    recall: withRecall.length ? perLayer(withRecall.map((m) => m.recall!), L1) : null,
    logit_lens: lens,
    norm_attention_layers: Array.from({ length: Math.max(L, 0) }, (_, l) => l),
    norm_attention_image_share: withNa.length ? perLayer(withNa.map((m) => imageShare(m.norm_attention!.layer, m.tokens.image, m.options.visual_tokens === 'patches' ? m.tokens.newlines : [])), L) : null,
    norm_attention_map: map,
    phases,
    conventions: CONVENTIONS,
  };
}

/** CSV columns, in order, after `layer`. */
const CSV_QUANTITIES = ['inter', 'intra_image', 'intra_text', 'recall', 'norm_attention_image_share'] as const;

function cell(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '' : String(x);
}

/**
 * One row per hidden-state index l = 0..L: layer, then mean, std, n of each quantity.
 * Empty cells: no value (std with n < 2, recall without captions). norm_attention_image_share
 * in row l is decoder layer l (the attention that reads hidden_states[l]); row L has none.
 * last_layer_prenorm is in aggregate.json only (the CSV stays numeric).
 */
export function aggregateCsv(a: Aggregate): string {
  const head = ['layer', ...CSV_QUANTITIES.flatMap((q) => [`${q}_mean`, `${q}_std`, `${q}_n`])];
  const rows = [head.join(',')];
  for (const l of a.layers) {
    const r: string[] = [String(l)];
    for (const q of CSV_QUANTITIES) {
      const s = (a[q] as Stat[] | null)?.[l];
      r.push(cell(s?.mean), cell(s?.std), s ? String(s.n) : '0');
    }
    rows.push(r.join(','));
  }
  return rows.join('\n') + '\n';
}


/** aggregate.json text: one top-level key per line, each value compact. */
export function aggregateJson(a: Aggregate): string {
  const lines = Object.entries(a).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** Writes OUT/aggregate.json and OUT/aggregate.csv; returns their paths. */
