/**
 * `phaselens gate` as a library call: every item of a data set through the narrow-gate
 * measures (src/probes/gate.ts: modality separation per hidden state, cross-modal
 * attention share per image-side position per layer), one resumable JSON per item
 * (README, "gate"), then the aggregate (mean ± sample std over items per layer).
 */
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { stat, type Stat } from '../analysis/aggregate.ts';
import type { DataItem } from '../data/index.ts';
import type { ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { gatePositions, gateProbe, gateQueries, imageTokens, selectGatePositions, separationText, type AttentionShare, type SeparationCurve } from '../probes/gate.ts';
import { itemPrompt, prepareItem, PROBE_IMAGE, promptOptions, resultHeader } from './items.ts';
import { writeFileAtomicSync } from './outputs.ts';
import { readResult, runItems, type RunSummary } from './runner.ts';
import { VERSION } from '../version.ts';

export interface GateRun {
  out: string;
  data: string;
  prompt: PromptSpec;
  padToSquare: boolean;
  /** Image-side groups to report (empty: every one the model has). */
  positions: string[];
  dropBos: boolean;
  bins: number;
}

/** Every flag checked on a stand-in input, before any weight loads. */
export function checkGate(m: ModelInfo, o: GateRun, first?: DataItem): void {
  const x = m.prepare(itemPrompt(m, first ?? {}, o.prompt), PROBE_IMAGE, { padToSquare: o.padToSquare });
  plan(m, x, o);
}

function plan(m: Pick<ModelInfo, 'name' | 'family'>, x: VlmInput, o: GateRun) {
  const g = x.groups;
  return {
    side: gatePositions(g),
    report: selectGatePositions(o.positions, g, `${m.name} (${m.family})`),
    queries: gateQueries(g),
    image: imageTokens(g),
    text: separationText(g, o.dropBos),
  };
}

export interface GateItemResult {
  model: string;
  model_family: string;
  options: Record<string, unknown>;
  separation: SeparationCurve;
  attention: AttentionShare;
}

export async function gateItem(gpu: Gpu, m: Vlm, item: DataItem, o: GateRun): Promise<Record<string, unknown>> {
  const x = prepareItem(m, item, o.prompt, o.padToSquare);
  const p = plan(m, x, o);
  const probe = gateProbe(gpu, m.languageModel, { ...p, bins: o.bins });
  await m.hooks.withHooks(probe.hooks, async () => {
    gpu.release(m.forward(gpu, x));
  });
  const r = await probe.result();
  return {
    ...resultHeader(m, item),
    options: options(m, o),
    tokens: { seq: x.ids.length, image: p.image.length, text: p.text.length, queries: p.queries, image_side: Object.fromEntries(p.side.map((s) => [s.name, s.positions])) },
    separation: { ...r.separation, bins: o.bins, resolution: 1 / o.bins },
    attention: r.attention,
  };
}

function options(m: Pick<Vlm, 'weightDtypes'>, o: GateRun): Record<string, unknown> {
  return {
    ...promptOptions(m, o.prompt, o.padToSquare),
    drop_bos: o.dropBos,
    positions: o.positions.length ? o.positions : 'every image-side position the model has',
    hidden_states: 'HF output_hidden_states: 0 = input embeddings, l = output of decoder layer l, L = after the final norm; last_layer_prenorm = layer L before it',
    separation: `|cos| of every image token × text token pair (text: every non-image position but the start/end-of-image tokens${o.dropBos ? ' and BOS' : ''}), histogram of ${o.bins} bins on [0, 1]; quantiles read off the cumulative histogram, interpolated inside a bin (resolution ${1 / o.bins})`,
    attention: 'softmax weights of every text query after the image, from the layer\'s own q and k, averaged over heads, summed per image-side group, averaged over the queries; share = that / the sum over every image-side group; per_token = share / the group\'s size; of_all = the mass itself (of the queries\' total attention, 1)',
  };
}

export interface GateAggregate {
  phaselens_version: string;
  model: string;
  model_family: string;
  n_items: number;
  options: Record<string, unknown>;
  separation: { q1: Stat[]; median: Stat[]; q3: Stat[] };
  attention: { groups: Record<string, { share: Stat[]; per_token: Stat[]; of_all: Stat[] }>; image_side_of_all: Stat[] };
}

const perLayer = (rows: readonly (readonly number[])[]): Stat[] => (rows[0] ?? []).map((_, l) => stat(rows.map((r) => r[l])));

export function aggregateGate(results: readonly GateItemResult[]): GateAggregate {
  const first = results[0];
  const groups: GateAggregate['attention']['groups'] = {};
  for (const name of Object.keys(first?.attention.groups ?? {})) {
    const all = results.map((r) => r.attention.groups[name]).filter((g) => g !== undefined);
    groups[name] = { share: perLayer(all.map((g) => g.share)), per_token: perLayer(all.map((g) => g.per_token)), of_all: perLayer(all.map((g) => g.of_all)) };
  }
  return {
    phaselens_version: VERSION,
    model: first?.model ?? '—',
    model_family: first?.model_family ?? '—',
    n_items: results.length,
    options: first?.options ?? {},
    separation: { q1: perLayer(results.map((r) => r.separation.q1)), median: perLayer(results.map((r) => r.separation.median)), q3: perLayer(results.map((r) => r.separation.q3)) },
    attention: { groups, image_side_of_all: perLayer(results.map((r) => r.attention.image_side_of_all)) },
  };
}

/** Writes OUT/aggregate.json and OUT/aggregate.csv (one row per measure and layer); returns the JSON's path. */
export function finishGate(out: string, results: readonly GateItemResult[]): string {
  const agg = aggregateGate(results);
  const path = join(out, 'aggregate.json');
  writeFileAtomicSync(path, JSON.stringify(agg, null, 1) + '\n');
  const csv = ['measure,group,layer,mean,std,n'];
  const rows = (measure: string, group: string, s: Stat[]) => s.forEach((v, l) => csv.push([measure, group, l, v.mean ?? '', v.std ?? '', v.n].join(',')));
  for (const k of ['q1', 'median', 'q3'] as const) rows(`separation_${k}`, '', agg.separation[k]);
  for (const [name, g] of Object.entries(agg.attention.groups)) for (const k of ['share', 'per_token', 'of_all'] as const) rows(`attention_${k}`, name, g[k]);
  rows('attention_of_all', 'image-side', agg.attention.image_side_of_all);
  writeFileAtomicSync(join(out, 'aggregate.csv'), csv.join('\n') + '\n');
  return path;
}

export async function gate(gpu: Gpu, m: Vlm, items: readonly DataItem[], o: GateRun): Promise<{ summary: RunSummary; report: string }> {
  const summary = await runItems(items, o.out, (item) => gateItem(gpu, m, item, o), { progress: { label: 'gate', unit: 'img' } });
  const results = items.map((i) => readResult(o.out, i.id)).filter((r): r is GateItemResult => r !== null);
  return { summary, report: finishGate(o.out, results) };
}
