/**
 * The aggregate of a `gate` run (README, "gate"): mean ± sample std over items of every
 * per-layer value of the per-item results (probes/gate.ts), and the shapes both files have,
 * so the report (report/gate-figures.ts) reads them without the pipeline.
 */
import { stat, type Stat } from './aggregate.ts';
import type { AttentionShare, SeparationCurve } from '../probes/gate.ts';

/** OUT/images/<id>.json of `gate`, as far as the aggregate reads it. */
export interface GateItemResult {
  id: string;
  label?: string;
  overlap_candidates?: string[];
  model: string;
  model_family: string;
  options: Record<string, unknown>;
  separation: SeparationCurve & { bins: number; resolution: number };
  attention: AttentionShare;
}

export interface OverlapResult {
  k: number;
  n_samples: number;
  classes: number;
  /** The mean overlap of random neighbourhoods with these labels. */
  chance: number;
  /**
   * Per candidate position, per HF hidden-state index 0..L; null where the rows are the same
   * for every sample (the position has not seen the image yet, e.g. <eoss>'s embedding at
   * index 0): every neighbour would be a tie.
   */
  positions: Record<string, (number | null)[]>;
}

/** How the run went: the data set as given, items that failed, items with no result (merge: the shards' sum). */
export interface GateRunStatus {
  data: string;
  failed: number;
  missing?: number;
}

export interface GateAggregate {
  phaselens_version: string;
  model: string;
  model_family: string;
  n_items: number;
  run: GateRunStatus;
  options: Record<string, unknown>;
  /** Per HF hidden-state index 0..L: the per-item quartiles of |cos|, averaged over items. */
  separation: { q1: Stat[]; median: Stat[]; q3: Stat[]; /** Of the per-item quantiles: 1 / bins. */ resolution: number | null };
  /** Per decoder layer 0..L−1. */
  attention: { groups: Record<string, { share: Stat[]; per_token: Stat[]; of_all: Stat[] }>; image_side_of_all: Stat[] };
  neighbourhood_overlap?: OverlapResult;
}

const perLayer = (rows: readonly (readonly number[])[]): Stat[] => (rows[0] ?? []).map((_, l) => stat(rows.map((r) => r[l])));

export function aggregateGate(results: readonly GateItemResult[], head: { phaselens_version: string; run: GateRunStatus }): GateAggregate {
  const first = results[0];
  const groups: GateAggregate['attention']['groups'] = {};
  for (const name of Object.keys(first?.attention.groups ?? {})) {
    const all = results.map((r) => r.attention.groups[name]).filter((g) => g !== undefined);
    groups[name] = { share: perLayer(all.map((g) => g.share)), per_token: perLayer(all.map((g) => g.per_token)), of_all: perLayer(all.map((g) => g.of_all)) };
  }
  return {
    phaselens_version: head.phaselens_version,
    model: first?.model ?? '—',
    model_family: first?.model_family ?? '—',
    n_items: results.length,
    run: head.run,
    options: first?.options ?? {},
    separation: {
      q1: perLayer(results.map((r) => r.separation.q1)),
      median: perLayer(results.map((r) => r.separation.median)),
      q3: perLayer(results.map((r) => r.separation.q3)),
      resolution: first?.separation.resolution ?? null,
    },
    attention: { groups, image_side_of_all: perLayer(results.map((r) => r.attention.image_side_of_all)) },
  };
}
