/**
 * `phaselens knockout` as a library call: every item of a data set through the knockout
 * sweep (src/interventions/knockout.ts) for every flow and centre layer, one resumable
 * JSON per item (README, "knockout"), then the aggregate (mean ± sample std over items
 * per flow and centre layer), the figure (one line per flow, as in arXiv 2411.18620) and
 * the report.
 */
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { stat, type Stat } from '../analysis/aggregate.ts';
import { readResult, runItems, type RunSummary } from './runner.ts';
import { safeId, type DataItem } from '../data/index.ts';
import { groupPositions, itemPrompt, parseAnswer, prepareItem, PROBE_IMAGE, promptOptions, requirePatchGrid, resultHeader } from './items.ts';
import { requireDisjoint } from '../interventions/groups.ts';
import { UserError } from '../errors.ts';
import { knockoutSweep, layerWindow, parseFlow, type Flow, type KnockoutResult } from '../interventions/knockout.ts';
import type { Box, ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { intervalFigure } from '../report/intervention-figures.ts';
import { runMeta, writeFileAtomicSync, writeInterventionReport, type RunStatus } from './outputs.ts';
import { VERSION } from '../version.ts';

export interface KnockoutRun {
  out: string;
  /** For the report: the data set as given. */
  data: string;
  prompt: PromptSpec;
  padToSquare: boolean;
  /** `DST<-SRC` / `SRC->DST` group specs. */
  flows: string[];
  window: number;
  answer?: string;
  firstToken: boolean;
  /** --object-box: the `object` group of items without a `box` of their own. */
  objectBox?: Box;
}

/** Flows of one prepared input, resolved and checked (disjoint, non-empty). */
export function resolveFlows(specs: readonly string[], x: VlmInput): Flow[] {
  return specs.map((spec) => {
    const f = parseFlow(spec);
    const flow = { name: f.name, dst: groupPositions(f.dst, x), src: groupPositions(f.src, x) };
    // one group on both sides (the study's last<-last) blocks each query's edges inside the group, itself included
    if (f.dst === f.src) requireSomeKey(f.name, flow.dst);
    else requireDisjoint({ name: f.dst, positions: flow.dst }, { name: f.src, positions: flow.src });
    return flow;
  });
}

/** A group knocked out from itself must leave its first query a key: it cannot start at position 0. */
function requireSomeKey(name: string, group: readonly number[]): void {
  if (Math.min(...group) === 0) throw new UserError(`--flow ${name}: the group holds position 0, whose query would have every key blocked`);
}

/** Every flag checked on a stand-in input, before any weight loads (prompt, groups, window, answer). */
export function checkKnockout(m: ModelInfo, o: KnockoutRun, first?: DataItem): void {
  const boxed = o.objectBox ?? first?.box;
  if (boxed) requirePatchGrid(m);
  // the stand-in image gets a stand-in box (the real one is checked against each item's image)
  const x = m.prepare(itemPrompt(m, first ?? {}, o.prompt), PROBE_IMAGE, boxed ? { objectBox: [0, 0, 4, 4] } : {});
  resolveFlows(o.flows, x);
  layerWindow(0, o.window, m.lm.num_hidden_layers);
  if (o.answer !== undefined) parseAnswer(m, o.answer, o.firstToken);
}

export async function knockoutItem(gpu: Gpu, m: Vlm, item: DataItem, o: KnockoutRun): Promise<Record<string, unknown>> {
  const x = prepareItem(m, item, o.prompt, o.padToSquare, o.objectBox);
  const answer = o.answer === undefined ? undefined : parseAnswer(m, o.answer, o.firstToken);
  const r = await knockoutSweep(gpu, m, x, resolveFlows(o.flows, x), { window: o.window, answer });
  return {
    ...resultHeader(m, item),
    ...(typeof item.meta.subset === 'string' && { subset: item.meta.subset }),
    options: { ...options(m, o), ...(x.groups.objectBox && { object_box: x.groups.objectBox, object_box_from: item.box ? 'data set' : '--object-box' }) },
    answer: { id: r.answer.id, text: m.decode([r.answer.id]), p_base: r.answer.p_base },
    flows: r.flows,
  };
}

function options(m: Pick<Vlm, 'weightDtypes'>, o: KnockoutRun): Record<string, unknown> {
  return {
    ...promptOptions(m, o.prompt, o.padToSquare),
    flows: o.flows,
    window: o.window,
    answer: o.answer ?? 'greedy first token of the un-intervened run',
    first_token: o.firstToken,
    mask: 'pre-softmax −3.4e38 on (DST query, SRC key) in every head of the window; the other weights renormalise',
    ...(o.objectBox && { object_box: o.objectBox }),
  };
}

export interface KnockoutAggregate {
  phaselens_version: string;
  model: string;
  model_family: string;
  n_items: number;
  options: Record<string, unknown>;
  flows: KnockoutFlowStats;
  /** The same per data-set subset (a gqa item's `subset`), when items have one; items without one are left out here. */
  subsets?: Record<string, { n_items: number; flows: KnockoutFlowStats }>;
}

type KnockoutFlowStats = Record<string, { centres: number[]; window: [number, number][]; rel_change_pct: Stat[]; p: Stat[] }>;

export function aggregateKnockout(results: readonly { flows: KnockoutResult['flows']; subset?: string }[], head: Omit<KnockoutAggregate, 'flows' | 'n_items' | 'subsets'>): KnockoutAggregate {
  const names = [...new Set(results.flatMap((r) => (r.subset === undefined ? [] : [r.subset])))].sort();
  const subsets = Object.fromEntries(
    names.map((name) => {
      const of = results.filter((r) => r.subset === name);
      return [name, { n_items: of.length, flows: flowStats(of) }];
    }),
  );
  return { ...head, n_items: results.length, flows: flowStats(results), ...(names.length && { subsets }) };
}

function flowStats(results: readonly { flows: KnockoutResult['flows'] }[]): KnockoutFlowStats {
  const flows: KnockoutFlowStats = {};
  const first = results[0];
  for (const [name, f] of Object.entries(first?.flows ?? {})) {
    const all = results.map((r) => r.flows[name]);
    flows[name] = {
      centres: f.centres,
      window: f.window,
      rel_change_pct: f.centres.map((_, i) => stat(all.map((a) => a.rel_change_pct[i]))),
      p: f.centres.map((_, i) => stat(all.map((a) => a.p[i]))),
    };
  }
  return flows;
}

export async function knockout(gpu: Gpu, m: Vlm, items: readonly DataItem[], o: KnockoutRun): Promise<{ summary: RunSummary; report: string }> {
  const summary = await runItems(items, o.out, (item) => knockoutItem(gpu, m, item, o), { progress: { label: 'knockout', unit: 'img' } });
  const results = items.map((i) => readResult(o.out, i.id)).filter((r): r is KnockoutItem => r !== null);
  return { summary, report: finishKnockout(o.out, results, { data: o.data, failed: summary.failed, missing: summary.missing.length }) };
}

/** What finishKnockout reads of a per-item result. */
export interface KnockoutItem {
  model: string;
  model_family: string;
  options: Record<string, unknown>;
  flows: KnockoutResult['flows'];
  subset?: string;
}

/** Aggregate, figure and report of per-item results (one run's, or merged shards'); returns the report's path. */
export function finishKnockout(out: string, results: readonly KnockoutItem[], run: RunStatus): string {
  const first = results[0];
  const agg = aggregateKnockout(results, { phaselens_version: VERSION, model: first?.model ?? '—', model_family: first?.model_family ?? '—', options: first?.options ?? {} });
  const window = Number(agg.options.window);
  writeFileAtomicSync(join(out, 'aggregate.json'), JSON.stringify(agg, null, 1) + '\n');
  const csv = ['flow,centre,window_lo,window_hi,rel_change_pct_mean,rel_change_pct_std,p_mean,n'];
  for (const [name, f] of Object.entries(agg.flows)) {
    f.centres.forEach((c, i) => csv.push([JSON.stringify(name), c, ...f.window[i], f.rel_change_pct[i].mean, f.rel_change_pct[i].std ?? '', f.p[i].mean, f.p[i].n].join(',')));
  }
  writeFileAtomicSync(join(out, 'aggregate.csv'), csv.join('\n') + '\n');
  if (agg.subsets) {
    const rows = ['subset,n_items,flow,centre,window_lo,window_hi,rel_change_pct_mean,rel_change_pct_std,p_mean,n'];
    for (const [subset, g] of Object.entries(agg.subsets)) {
      for (const [name, f] of Object.entries(g.flows)) {
        f.centres.forEach((c, i) => rows.push([JSON.stringify(subset), g.n_items, JSON.stringify(name), c, ...f.window[i], f.rel_change_pct[i].mean, f.rel_change_pct[i].std ?? '', f.p[i].mean, f.p[i].n].join(',')));
      }
    }
    writeFileAtomicSync(join(out, 'aggregate_by_subset.csv'), rows.join('\n') + '\n');
  }
  // one figure for all items, then one per data-set subset (the study's per-type panels)
  const figure = (flows: KnockoutFlowStats, n: number, subset?: string) =>
    intervalFigure({
      id: subset === undefined ? 'knockout' : `knockout-subset-${safeId(subset)}`,
      file: subset === undefined ? 'knockout_rel_change.svg' : `knockout_rel_change.${safeId(subset)}.svg`,
      title: `Attention knockout — relative change of the answer probability${subset === undefined ? '' : ` — subset ${subset}`}`,
      subtitle: `${agg.model_family} ${agg.model} · mean over ${n} item(s) · window ${window} layers`,
      xLabel: 'centre layer l of the knocked-out window',
      yLabel: '(p_knock − p_base) / p_base, %',
      series: Object.entries(flows).map(([name, f]) => ({ name, x: f.centres, stats: f.rel_change_pct })),
      caption: `For each flow DST<-SRC, attention from DST queries to SRC keys is blocked in layers l−${Math.floor(window / 2)}…l+${Math.ceil(window / 2) - 1} (clipped), and the probability of the answer token at the last position is compared with the un-intervened run; mean over items with a ± 1 sample-std band.`,
    });
  const figures = [figure(agg.flows, agg.n_items), ...Object.entries(agg.subsets ?? {}).map(([name, g]) => figure(g.flows, g.n_items, name))];
  return writeInterventionReport(out, {
    title: 'Attention knockout',
    method: 'Attention knockout as in "Cross-modal Information Flow in Multimodal Large Language Models" (arXiv 2411.18620): a flow DST<-SRC blocks every attention edge from a DST query to a SRC key, in every head of a window of layers centred on l, by a pre-softmax mask; the remaining weights renormalise.',
    meta: {
      ...runMeta(agg, run),
      phaselens_version: VERSION,
      ...(agg.subsets && { subsets: `${Object.entries(agg.subsets).map(([k, g]) => `${k} (${g.n_items})`).join(', ')}: a figure each, the table in aggregate_by_subset.csv` }),
      ...agg.options,
    },
    figures,
    table: {
      columns: ['flow', 'centre', 'window', 'rel. change % (mean)', 'std', 'p_knock (mean)', 'n'],
      rows: Object.entries(agg.flows).flatMap(([name, f]) => f.centres.map((c, i) => [name, c, `${f.window[i][0]}–${f.window[i][1]}`, f.rel_change_pct[i].mean, f.rel_change_pct[i].std, f.p[i].mean, f.p[i].n])),
    },
  });
}
