/**
 * Figures of the narrow-gate measures (arXiv 2412.06646), from `gate` aggregates
 * (analysis/gate-aggregate.ts) — for one run's report and, with several runs, for the
 * side-by-side report (`gate-report`):
 *
 *   gate_separation.svg         median |cos| between image and text tokens per hidden state, a line
 *                               per run, the band from the first to the third quartile
 *   gate_attention_share.svg    the text queries' attention share per image-side position per
 *                               decoder layer, a line per position (± 1 std over items)
 *   gate_overlap.svg            neighbourhood overlap per hidden state, a line per candidate
 *                               position, chance dashed (labelled data sets only)
 *
 * A position has the same colour in every run's figure, so panels side by side compare.
 */
import type { Stat } from '../analysis/aggregate.ts';
import type { GateAggregate } from '../analysis/gate-aggregate.ts';
import { familyTitle } from '../models/registry.ts';
import { GATE_POSITIONS } from '../probes/gate.ts';
import type { Figure } from './figures.ts';
import { lineChart, PALETTE } from './svg.ts';

/** One run as a figure names it. */
export interface GateRunView {
  /** The run's name in a side-by-side report; the model's otherwise. */
  name: string;
  agg: GateAggregate;
}

const means = (s: readonly Stat[]) => s.map((v) => v.mean);
const layers = (n: number) => Array.from({ length: n }, (_, l) => l);

/** "LLaVA llava-tiny" — the family's title and the model's name. */
export function modelTitle(a: Pick<GateAggregate, 'model' | 'model_family'>): string {
  return `${familyTitle(a.model_family) || a.model_family} ${a.model}`;
}

/** A stable colour per image-side position (its place in GATE_POSITIONS). */
export function positionColor(name: string): string {
  const i = (GATE_POSITIONS as readonly string[]).indexOf(name);
  return PALETTE[(i < 0 ? GATE_POSITIONS.length : i) % PALETTE.length];
}

function runsSubtitle(runs: readonly GateRunView[]): string {
  return runs.map((r) => `${r.name === r.agg.model ? modelTitle(r.agg) : `${r.name}: ${modelTitle(r.agg)}`}, ${r.agg.n_items} item(s)`).join(' · ');
}

export function separationFigure(runs: readonly GateRunView[], file = 'gate_separation.svg'): Figure {
  const title = 'Modality separation — median |cos| between image and text tokens';
  const data = lineChart({
    title,
    subtitle: runsSubtitle(runs),
    xLabel: 'hidden state l (HF index: 0 = embeddings, L = after the final norm)',
    yLabel: 'median |cos(image token, text token)|',
    series: runs.map((r, i) => ({
      name: r.name,
      x: layers(r.agg.separation.median.length),
      y: means(r.agg.separation.median),
      range: { lo: means(r.agg.separation.q1), hi: means(r.agg.separation.q3) },
      bandLabel: 'q1–q3',
      color: PALETTE[i % PALETTE.length],
    })),
    yBounds: [0, 1],
  });
  const res = [...new Set(runs.map((r) => r.agg.separation.resolution).filter((v) => v !== null))];
  return {
    id: 'gate-separation',
    file,
    title,
    kind: 'svg',
    data,
    caption:
      `For each item and hidden state, the median and the quartiles of |cos| over every image token × text token pair (text: the non-image positions but start/end-of-image), read off a GPU histogram${res.length ? ` (resolution ${res.map((v) => v.toPrecision(3)).join(', ')})` : ''}; ` +
      'the line is the per-item median averaged over items, the band runs from the averaged first to the averaged third quartile. Low values: the modalities stay apart in the residual stream.',
  };
}

export function attentionShareFigure(run: GateRunView, file = 'gate_attention_share.svg', id = 'gate-attention-share'): Figure {
  const groups = Object.entries(run.agg.attention.groups);
  const title = `Attention share by image-side position${run.name === run.agg.model ? '' : ` — ${run.name}`}`;
  const data = lineChart({
    title,
    subtitle: runsSubtitle([run]),
    xLabel: 'decoder layer l',
    yLabel: 'share of the image-side attention',
    series: groups.map(([name, g]) => ({
      name,
      x: layers(g.share.length),
      y: means(g.share),
      band: g.share.some((s) => s.std !== null) ? g.share.map((s) => s.std) : undefined,
      bandLabel: '± 1 std',
      color: positionColor(name),
    })),
    yBounds: [0, 1],
  });
  return {
    id,
    file,
    title,
    kind: 'svg',
    data,
    caption:
      'For every text query after the image, the softmax weights of each head (from the layer\'s own q and k) summed over each image-side position group and averaged over heads and queries, over their sum on the whole image side (the groups\' shares add up to 1); mean over items, ± 1 sample std. ' +
      'A gate: one one-token group (end-of-image, last-image) carrying most of the share.',
  };
}

/** Neighbourhood overlap per candidate position; undefined when the run had no labels. */
export function overlapFigure(run: GateRunView, file = 'gate_overlap.svg', id = 'gate-overlap'): Figure | undefined {
  const o = run.agg.neighbourhood_overlap;
  if (!o) return undefined;
  const entries = Object.entries(o.positions);
  const n = entries[0]?.[1].length ?? 0;
  const title = `Neighbourhood overlap by position${run.name === run.agg.model ? '' : ` — ${run.name}`}`;
  const data = lineChart({
    title,
    subtitle: `${runsSubtitle([run])} · k = ${o.k} · ${o.n_samples} samples, ${o.classes} classes`,
    xLabel: 'hidden state l (HF index)',
    yLabel: 'fraction of k-NN with the same label',
    series: [
      ...entries.map(([name, v]) => ({ name, x: layers(v.length), y: v, color: positionColor(name) })),
      { name: 'chance', x: layers(n), y: layers(n).map(() => o.chance), color: '#777', dash: '6 3', dots: false },
    ],
    yBounds: [0, 1],
  });
  return {
    id,
    file,
    title,
    kind: 'svg',
    data,
    caption: `For each candidate position and hidden state, the mean over samples of the fraction of the sample's k = ${o.k} nearest neighbours (cosine) that share its label; chance: the overlap of random neighbourhoods with these labels (${o.chance.toPrecision(3)}). No point where every sample's row is the same (the position has not seen the image yet).`,
  };
}

/** The figures of one gate run's report. */
export function gateFigures(agg: GateAggregate): Figure[] {
  const run = { name: agg.model, agg };
  const overlap = overlapFigure(run);
  return [separationFigure([run]), attentionShareFigure(run), ...(overlap ? [overlap] : [])];
}
