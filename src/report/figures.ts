/**
 * Which figure is drawn from which metrics (all from the aggregate, src/analysis/aggregate.ts):
 *
 *   fig1_inter.svg           Fig. 1  mean inter-modal contextualization s(l), l = 0..L, ± sample std band,
 *                                    phases of the mean curve shaded and named; layer L before the final
 *                                    norm as a separate marker.
 *   fig3_intra.svg           Fig. 3  mean intra-image and intra-text contextualization, ± std bands, pre-norm markers.
 *   fig4_norm_attention.png  Fig. 4  norm-based attention of the query token (default: the last), decoder
 *                                    layers (rows, 0 at the top) × key positions, image span marked, colour bar.
 *                                    Mean map over images when they share one token layout, else the first image.
 *   fig4_image_share.svg     Fig. 4b share of the query's norm attention on image keys per decoder layer, mean ± std.
 *   fig5_recall.svg          Fig. 5  LogitLens recall per layer, mean ± std (only when captions exist); a run
 *                                    with a restricted lens (--lens-layers / --lens-positions) draws only the
 *                                    covered layers and says what was covered in the subtitle and caption.
 */
import type { Aggregate, Stat } from '../analysis/aggregate.ts';
import { lineChart, PALETTE, REGION_TINTS, type LineSeries, type PointMarker, type ShadedRegion } from './svg.ts';
import { heatmapPng } from './heatmap.ts';
import { familyTitle } from '../models/registry.ts';
import type { PatchGrid } from '../models/vlm.ts';

export interface Figure {
  /** e.g. "fig1". */
  id: string;
  /** File name under OUT/figures/. */
  file: string;
  title: string;
  /** What exactly is plotted (shown under the figure in the report). */
  caption: string;
  kind: 'svg' | 'png';
  /** SVG document text (kind 'svg') or PNG bytes (kind 'png'). */
  data: string | Uint8Array;
}

export interface FigureOptions {
  /** Colour scale of the heatmap (default 'log': norm attention is heavy-tailed, BOS-like sinks would flatten a linear scale). */
  heatmapScale?: 'linear' | 'log';
}

export const HIDDEN_STATE_CONVENTION =
  'x axis: hidden_states index l, HF output_hidden_states convention: 0 = input embeddings, l = output of decoder layer l, L = after the final norm; the last layer before the final norm is shown as a separate marker (◇) at l = L';

export interface PhaseSpan {
  x0: number;
  x1: number;
  label: string;
  direction: 'rise' | 'fall' | 'flat';
}

/**
 * Phase runs of a curve from `{boundaries, labels}` (boundaries = turning-point layers; run k spans
 * [edge k, edge k+1] with edges = [0, ...boundaries, L]). Directions are read off the curve; labels
 * are used when there is one per run, else the runs are labelled by direction ("1 rise", "2 fall", …).
 */
export function phaseSpans(phases: { boundaries: readonly number[]; labels?: readonly string[] } | null | undefined, curve: readonly (number | null)[]): PhaseSpan[] {
  if (!phases || curve.length < 2) return [];
  const L = curve.length - 1;
  const edges = [0, ...phases.boundaries.filter((b) => b > 0 && b < L), L];
  const spans: PhaseSpan[] = [];
  for (let k = 0; k + 1 < edges.length; k++) {
    const a = curve[edges[k]];
    const b = curve[edges[k + 1]];
    const direction = a === null || b === null || a === b ? 'flat' : b > a ? 'rise' : 'fall';
    spans.push({ x0: edges[k], x1: edges[k + 1], label: '', direction });
  }
  const labels = phases.labels && phases.labels.length === spans.length ? phases.labels : spans.map((s, k) => `${k + 1} ${s.direction}`);
  spans.forEach((s, k) => (s.label = labels[k]));
  return spans;
}

const means = (s: readonly Stat[]) => s.map((v) => v.mean);
const stds = (s: readonly Stat[]) => s.map((v) => v.std);
const hasStd = (s: readonly Stat[]) => s.some((v) => v.std !== null);
function nRange(s: readonly Stat[]): string {
  const ns = s.map((v) => v.n);
  const lo = Math.min(...ns);
  const hi = Math.max(...ns);
  return lo === hi ? `n = ${lo}` : `n = ${lo}–${hi} per layer`;
}

function curveSeries(name: string, s: readonly Stat[], x: readonly number[], color: string): LineSeries {
  return { name, x, y: means(s), band: hasStd(s) ? stds(s) : undefined, bandLabel: '± 1 std', color };
}

function subtitle(a: Aggregate, s: readonly Stat[], extra = ''): string {
  const band = hasStd(s) ? ' · shaded band: ± 1 sample std' : ' · no std band (fewer than 2 images)';
  return `${a.model_family ? `${familyTitle(a.model_family) || a.model_family} ` : ''}${a.model ?? 'model ?'} · mean over images (${nRange(s)})${band}${extra}`;
}

export function figureInter(a: Aggregate): Figure {
  const spans = phaseSpans(a.phases, means(a.inter));
  const regions: ShadedRegion[] = spans.map((p, k) => ({
    x0: p.x0,
    x1: p.x1,
    label: p.label,
    short: `${p.label.split(' ')[0]}${p.direction === 'rise' ? ' ↑' : p.direction === 'fall' ? ' ↓' : ''}`,
    color: REGION_TINTS[k % REGION_TINTS.length],
  }));
  const markers: PointMarker[] = [];
  const L = a.layers.length - 1;
  const pre = a.last_layer_prenorm?.inter;
  if (pre && pre.mean !== null) markers.push({ x: L, y: pre.mean, err: pre.std, label: `layer ${L} before final norm (mean${pre.std !== null ? ' ± std' : ''})`, color: PALETTE[0] });
  const data = lineChart({
    title: 'Fig. 1 — Inter-modal contextualization per layer',
    subtitle: subtitle(a, a.inter, regions.length > 6 ? ` · ${regions.length} monotone runs shaded (see the phase table)` : ''),
    xLabel: 'layer l (hidden_states index; 0 = embeddings, L = after final norm)',
    yLabel: 'inter-modal contextualization s(l)',
    series: [curveSeries('s(l) = mean cos(image token, text token)', a.inter, a.layers, PALETTE[0])],
    regions,
    markers,
  });
  const phaseText = spans.length
    ? `Shaded: phases of the mean curve = maximal monotone runs${a.phases && a.phases.window > 1 ? ` after a moving average of ${a.phases.window} layers` : ''} (${spans.map((p) => `${p.label}: l ${p.x0}–${p.x1}`).join('; ')}).`
    : 'No phases (curve missing or flat).';
  return {
    id: 'fig1',
    file: 'fig1_inter.svg',
    title: 'Fig. 1 — Inter-modal contextualization',
    caption:
      `Inter-modal contextualization s(l) = 1/(m n) Σ_i Σ_j cos(v_i, w_j) between the m image tokens and the n text tokens (BOS ${a.options?.drop_bos ? 'dropped' : 'included'}), computed as the dot product of the two mean unit vectors; mean over images with a ± 1 sample-std band (${nRange(a.inter)}). ` +
      `${HIDDEN_STATE_CONVENTION}. ${phaseText}`,
    kind: 'svg',
    data,
  };
}

export function figureIntra(a: Aggregate): Figure {
  const L = a.layers.length - 1;
  const markers: PointMarker[] = [];
  const pre = a.last_layer_prenorm;
  if (pre?.intra_image.mean != null) markers.push({ x: L, y: pre.intra_image.mean, err: pre.intra_image.std, label: `intra-image, layer ${L} before final norm`, color: PALETTE[1] });
  if (pre?.intra_text.mean != null) markers.push({ x: L, y: pre.intra_text.mean, err: pre.intra_text.std, label: `intra-text, layer ${L} before final norm`, color: PALETTE[2] });
  const data = lineChart({
    title: 'Fig. 3 — Intra-modal contextualization per layer',
    subtitle: subtitle(a, a.intra_image),
    xLabel: 'layer l (hidden_states index; 0 = embeddings, L = after final norm)',
    yLabel: 'mean pairwise cosine within a modality',
    series: [curveSeries('intra-image', a.intra_image, a.layers, PALETTE[1]), curveSeries('intra-text', a.intra_text, a.layers, PALETTE[2])],
    markers,
  });
  return {
    id: 'fig3',
    file: 'fig3_intra.svg',
    title: 'Fig. 3 — Intra-modal contextualization',
    caption:
      `Intra-modal contextualization: mean cos(x_i, x_j) over pairs i ≠ j inside one set, (‖Σ_i x̂_i‖² − m) / (m(m − 1)), for the image tokens and for the text tokens (BOS ${a.options?.drop_bos ? 'dropped' : 'included'}); mean over images with ± 1 sample-std bands (${nRange(a.intra_image)}). ` +
      `${HIDDEN_STATE_CONVENTION}.`,
    kind: 'svg',
    data,
  };
}

/** How a restricted (or mixed) LogitLens run is labelled; '' for the full lens (every layer, every visual token, in every image). */
export function lensCoverageText(a: Aggregate): string {
  const c = a.logit_lens;
  if (!c || (c.full && c.same)) return '';
  const L1 = a.layers.length;
  const layers = c.layers.length === L1 ? `all ${L1} hidden-state indices` : `hidden-state indices ${c.layers.join(', ')} (${c.layers.length} of ${L1})`;
  const pos = c.n_positions === c.n_visual ? `all ${c.n_visual} visual tokens` : `visual tokens ${c.positions} (${c.n_positions} of ${c.n_visual}, counted from the first visual token)`;
  const what = c.full
    ? 'The first image\'s LogitLens covered every layer and visual token.'
    : `Restricted LogitLens (--lens-layers / --lens-positions): it covered ${layers} and ${pos}; recall is over the covered tokens and uncovered layers are not drawn.`;
  return `${what}${c.same ? '' : ` The images differ in coverage (a folder resumed with other lens flags)${c.full ? '' : ': this is the first image\'s'}, and n per layer counts the images that covered the layer.`}`;
}

export function figureRecall(a: Aggregate): Figure | null {
  if (!a.recall) return null;
  const restricted = !!a.logit_lens && !a.logit_lens.full;
  // a restricted lens: only the layers some image covered (n > 0), joined by the line
  const covered = a.layers.filter((l) => a.recall![l].n > 0);
  const keep = !restricted ? a.layers : covered.length ? covered : a.logit_lens!.layers;
  const stats = keep.map((l) => a.recall![l]);
  const c = a.logit_lens;
  const data = lineChart({
    title: 'Fig. 5 — LogitLens recall of caption words per layer',
    subtitle: subtitle(a, stats, restricted && c ? ` · lens restricted: ${keep.length} of ${a.layers.length} layers, ${c.n_positions} of ${c.n_visual} visual tokens` : ''),
    xLabel: 'layer l (hidden_states index; 0 = embeddings, L = after final norm)',
    yLabel: 'recall of caption words',
    yBounds: [0, 1],
    series: [{ ...curveSeries('recall', stats, keep, PALETTE[3]), ...(restricted ? { dots: true } : {}) }],
    ...(restricted ? { xDomain: [0, a.layers.length - 1] as [number, number] } : {}),
  });
  const k = typeof a.options?.k === 'number' ? a.options.k : undefined;
  const which = restricted ? 'each covered image token' : 'every image token';
  return {
    id: 'fig5',
    file: 'fig5_recall.svg',
    title: 'Fig. 5 — LogitLens recall',
    caption:
      `LogitLens recall(l) = |caption words ∩ decoded words| / |caption words|, where the decoded words are those of the top-${k ?? 'k'} tokens of the final norm + lm_head applied to ${which}'s hidden state at layer l (at l = L the stored state is already normed and is not normed again); ` +
      `words normalised as documented in src/analysis/recall.ts (case, the ▁ marker, stop words, minimum length). Mean over images with captions, ± 1 sample std (${nRange(stats)}). x axis: hidden_states index l, 0 = embeddings, L = after the final norm.` +
      (lensCoverageText(a) ? ` ${lensCoverageText(a)}` : ''),
    kind: 'svg',
    data,
  };
}

export function figureNormAttention(a: Aggregate, opts: FigureOptions = {}): Figure | null {
  const m = a.norm_attention_map;
  if (!m || m.layer.length === 0) return null;
  const scale = opts.heatmapScale ?? 'log';
  const h = heatmapPng({
    values: m.layer,
    title: `NORM ATTENTION OF TOKEN ${m.query}${scale === 'log' ? ', LOG COLOUR SCALE' : ''}`,
    rowTitle: 'LAYER',
    colTitle: 'KEY POSITION',
    span: { start: m.image_span[0], end: m.image_span[1], label: 'IMAGE' },
    scale,
    maskFrom: m.query + 1 < m.layer[0].length ? m.query + 1 : undefined,
  });
  const who = m.source === 'mean' ? `mean over ${m.n} image${m.n === 1 ? '' : 's'} (all share one token layout)` : `first image only (${m.image}; token layouts differ between images)`;
  return {
    id: 'fig4',
    file: 'fig4_norm_attention.png',
    title: 'Fig. 4 — Norm-based attention of the query token',
    caption:
      `Norm-based attention ‖Σ_h α^h_qj f^h(x_j)‖ (Kobayashi et al. 2020) of query token q = ${m.query} (sequence length ${m.seq}) to every key position j (columns), for decoder layers 0..${m.layer.length - 1} (rows, layer 0 at the top; row l = decoder layer l, which reads hidden_states[l]). ` +
      `The orange band marks the image tokens [${m.image_span[0]}, ${m.image_span[1]}).${m.query + 1 < m.layer[0].length ? ` Keys after the query (causally masked) are light grey.` : ''} Colour: viridis, ${scale === 'log' ? 'log10' : 'linear'} scale from ${h.min.toPrecision(3)} to ${h.max.toPrecision(3)}. Map: ${who}.`,
    kind: 'png',
    data: h.png,
  };
}

/**
 * The norm-attention map's values on one patch grid, rows × cols: key position
 * first + r·stride + c, mean over the decoder layers.
 */
export function patchAttention(layer: readonly (readonly number[])[], g: Omit<PatchGrid, 'box'>): number[][] {
  return Array.from({ length: g.rows }, (_, r) =>
    Array.from({ length: g.cols }, (_, c) => layer.reduce((sum, row) => sum + row[g.first + r * g.stride + c], 0) / layer.length),
  );
}

/** Fig. 4c, one per patch grid (LLaVA-1.5: the image; LLaVA-NeXT: the base view, then the tiles): where on the image the query's norm attention goes. */
export function figurePatchAttention(a: Aggregate, opts: FigureOptions = {}): Figure[] {
  const m = a.norm_attention_map;
  if (!m || m.layer.length === 0) return [];
  const scale = opts.heatmapScale ?? 'log';
  const who = m.source === 'mean' ? `mean over ${m.n} image${m.n === 1 ? '' : 's'}` : `first image only (${m.image})`;
  return m.grids.map((g) => {
    const view = g.view === 'image' ? 'the image' : g.view === 'base' ? 'the base view' : 'the tiles';
    const h = heatmapPng({
      values: patchAttention(m.layer, g),
      title: `NORM ATTENTION OF TOKEN ${m.query} ON ${view.toUpperCase()}, MEAN OVER LAYERS${scale === 'log' ? ', LOG SCALE' : ''}`,
      rowTitle: 'PATCH ROW',
      colTitle: 'PATCH COLUMN',
      scale,
      targetWidth: 420,
      targetHeight: Math.round((420 * g.rows) / g.cols),
    });
    const [x0, y0, x1, y1] = (g.box ?? []).map((v) => Math.round(v));
    const where = g.box ? `; the grid covers x ${x0}..${x1}, y ${y0}..${y1} of the original image (pixels)` : '; the images differ in where the grid sits in them';
    return {
      id: `fig4c-${g.view}`,
      file: `fig4c_patch_attention_${g.view}.png`,
      title: `Fig. 4c — Norm attention on the patches of ${view}`,
      caption:
        `The query token's (q = ${m.query}) norm-based attention to each of the ${g.rows} × ${g.cols} patches of ${view} (row r, column c = key position ${g.first} + ${g.stride}·r + c), mean over decoder layers 0..${m.layer.length - 1}${where}` +
        `${g.stride > g.cols ? '; the image_newline token ending each row is not drawn' : ''}. Colour: viridis, ${scale === 'log' ? 'log10' : 'linear'} scale from ${h.min.toPrecision(3)} to ${h.max.toPrecision(3)}. Map: ${who}.`,
      kind: 'png' as const,
      data: h.png,
    };
  });
}

export function figureImageShare(a: Aggregate): Figure | null {
  const s = a.norm_attention_image_share;
  if (!s) return null;
  const data = lineChart({
    title: 'Fig. 4b — Share of the query\'s norm attention on image tokens',
    subtitle: subtitle(a, s),
    xLabel: 'decoder layer (0-based; reads hidden_states[l])',
    yLabel: 'image share of norm attention',
    yBounds: [0, 1],
    series: [curveSeries('image share', s, a.norm_attention_layers, PALETTE[4])],
  });
  return {
    id: 'fig4b',
    file: 'fig4_image_share.svg',
    title: 'Fig. 4b — Image share of norm attention',
    caption:
      `Per image and decoder layer l: Σ over image keys of the query token's norm-based attention / Σ over all keys (BOS and the query itself included); mean over images, ± 1 sample std (${nRange(s)}).`,
    kind: 'svg',
    data,
  };
}

/** Every figure the aggregate supports, in report order (figures without data are left out). */
export function buildFigures(a: Aggregate, opts: FigureOptions = {}): Figure[] {
  if (a.n_images === 0 || a.layers.length === 0) return [];
  const out: (Figure | null)[] = [figureInter(a), figureIntra(a), figureNormAttention(a, opts), ...figurePatchAttention(a, opts), figureImageShare(a), figureRecall(a)];
  return out.filter((f): f is Figure => f !== null);
}

