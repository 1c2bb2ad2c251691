/**
 * `phaselens knockout` as a library call: every item of a data set through the knockout
 * (src/interventions/knockout.ts) for every flow, one resumable JSON per item (README,
 * "knockout"), then the aggregate (mean ± sample std over items), the figure and the report.
 * Three modes (`options.mode` of every result and of the aggregate):
 *
 *   window     (default) a window of --window layers around each centre layer, as in
 *              arXiv 2411.18620: p and rel_change_pct per centre layer
 *   layers     --layers all|a-b: one run with the flow knocked out in those layers
 *   from-last  --from-last: runs knocking out layers i … L−1, i = L−1 down to 0
 *
 * The last two are the narrow-gate study's ablations (arXiv 2412.06646; `--flow gate`) and
 * also generate: the answer greedily generated under the knockout (the flow applied at
 * every decoding step when DST is `text`), scored by VQA exact match when the data set has
 * answers, and against the un-intervened answer always.
 *
 * OUT/aggregate.json in the layers / from-last modes (what the gate figures read):
 *
 *   {"phaselens_version", "model", "model_family", "n_items", "options": {...},
 *    "mode": "layers" | "from-last",
 *    "p_base": Stat,                                  Stat = {"mean", "std", "n"}
 *    "vqa": {"n", "accuracy_base"} | null,            null without answers in the data set
 *    "flows": {"<dst><-<src>": {
 *       "window": [[lo, hi], ...],                   one entry per run, in run order
 *                                                    (from-last: [L−1, L−1], [L−2, L−1], … [0, L−1])
 *       "p": [Stat], "rel_change_pct": [Stat],       answer probability at the last prompt position
 *       "accuracy": [number | null],                 VQA exact match under the knockout (null: no answers)
 *       "agreement": [number | null]}},              share of items whose answer equals the un-intervened one
 *                                                    (null without generation)
 *    "subsets"?: {"<name>": {"n_items", "flows"}}}
 *
 * In the window mode flows[name] is {"centres", "window", "rel_change_pct", "p"} (no
 * p_base, vqa, accuracy or agreement), as before.
 */
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { stat, type Stat } from '../analysis/aggregate.ts';
import { readResult, runItems, type RunSummary } from './runner.ts';
import { safeId, type DataItem } from '../data/index.ts';
import { groupPositions, itemPrompt, parseAnswer, prepareItem, PROBE_IMAGE, promptOptions, requirePatchGrid, resultHeader } from './items.ts';
import { randomImagePosition, requireDisjoint, type RandomDraw } from '../interventions/groups.ts';
import { UserError } from '../errors.ts';
import { fromLastRanges, knockoutLayers, knockoutSweep, layerWindow, parseFlow, type Flow, type KnockoutResult, type LayerKnockoutFlow } from '../interventions/knockout.ts';
import { vqaCorrect } from '../analysis/vqa-score.ts';
import type { Box, ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { intervalFigure } from '../report/intervention-figures.ts';
import { aggregateHead, runMeta, writeFileAtomicSync, writeInterventionReport, type RunStatus } from './outputs.ts';
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
  /** --layers all|a-b (mode layers) or --from-last; neither: the window sweep. */
  layers?: string;
  fromLast?: boolean;
  /** --generate N: tokens generated per run (layers / from-last modes; default DEFAULT_GENERATE when the data set has answers, else 0). */
  generate?: number;
  /** --seed (default 0): with the item's id, draws `random-image`. */
  seed?: number;
}

export type KnockoutMode = 'window' | 'layers' | 'from-last';

/** Tokens generated per run when the data set has answers and --generate is not given (ablate's --max-new-tokens default). */
export const DEFAULT_GENERATE = 8;

function modeOf(o: Pick<KnockoutRun, 'layers' | 'fromLast'>): KnockoutMode {
  if (o.layers !== undefined && o.fromLast) throw new UserError('give either --layers or --from-last, not both');
  return o.fromLast ? 'from-last' : o.layers !== undefined ? 'layers' : 'window';
}

/** --layers all | a-b → one range [lo, hi]. */
export function parseLayerRange(spec: string, L: number): [number, number] {
  if (spec.trim() === 'all') return [0, L - 1];
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(spec) ?? /^\s*(\d+)()\s*$/.exec(spec);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? (m[2] === '' ? lo : Number(m[2])) : NaN;
  if (!m || hi < lo || hi >= L) throw new UserError(`--layers ${spec}: give all, a layer, or a range a-b within 0..${L - 1}`);
  return [lo, hi];
}

/** The layer ranges of the layers / from-last modes. */
function rangesOf(o: KnockoutRun, L: number): [number, number][] {
  return o.fromLast ? fromLastRanges(L) : [parseLayerRange(o.layers!, L)];
}

/** New tokens per run: --generate, else DEFAULT_GENERATE for an item with answers. */
function generateOf(o: KnockoutRun, item: Pick<DataItem, 'answers'>): number {
  return o.generate ?? (item.answers ? DEFAULT_GENERATE : 0);
}

/** Flows of one prepared input, resolved and checked (disjoint, non-empty); `draw` picks `random-image`. */
export function resolveFlows(specs: readonly string[], x: VlmInput, draw?: RandomDraw): Flow[] {
  return specs.map((spec) => {
    const f = parseFlow(spec);
    const flow = { name: f.name, dst: groupPositions(f.dst, x, draw), src: groupPositions(f.src, x, draw), generated: f.dst === 'text' };
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
  const mode = modeOf(o);
  if (mode === 'window') {
    layerWindow(0, o.window, m.lm.num_hidden_layers);
    if (o.generate !== undefined) throw new UserError('--generate scores the answer generated under a knockout in fixed layers: give --layers or --from-last with it');
  } else {
    rangesOf(o, m.lm.num_hidden_layers);
    if (o.generate !== undefined && (!Number.isInteger(o.generate) || o.generate < 0)) throw new UserError(`--generate must be an integer ≥ 0, got ${o.generate}`);
  }
  if (o.answer !== undefined) parseAnswer(m, o.answer, o.firstToken);
}

export async function knockoutItem(gpu: Gpu, m: Vlm, item: DataItem, o: KnockoutRun): Promise<Record<string, unknown>> {
  const x = prepareItem(m, item, o.prompt, o.padToSquare, o.objectBox);
  const answer = o.answer === undefined ? undefined : parseAnswer(m, o.answer, o.firstToken);
  const draw = { key: item.id, seed: o.seed ?? 0 };
  const flows = resolveFlows(o.flows, x, draw);
  const mode = modeOf(o);
  const n = generateOf(o, item);
  const head = {
    ...resultHeader(m, item),
    ...(typeof item.meta.subset === 'string' && { subset: item.meta.subset }),
    mode,
    options: { ...options(m, o, n), ...(x.groups.objectBox && { object_box: x.groups.objectBox, object_box_from: item.box ? 'data set' : '--object-box' }) },
    ...(o.flows.some((f) => parseFlow(f).src === 'random-image' || parseFlow(f).dst === 'random-image') && { random_image: { key: item.id, seed: draw.seed, position: randomImagePosition(x.groups, draw) } }),
  };
  if (mode === 'window') {
    const r = await knockoutSweep(gpu, m, x, flows, { window: o.window, answer });
    return { ...head, answer: { id: r.answer.id, text: m.decode([r.answer.id]), p_base: r.answer.p_base }, flows: r.flows };
  }
  const r = await knockoutLayers(gpu, m, x, flows, { ranges: rangesOf(o, m.lm.num_hidden_layers), answer, generate: n });
  const base = r.base_tokens === null ? null : m.decode(r.base_tokens);
  return {
    ...head,
    answer: { id: r.answer.id, text: m.decode([r.answer.id]), p_base: r.answer.p_base },
    ...(base !== null && { generation: { max_new_tokens: n, base } }),
    ...(item.answers && base !== null && { vqa: { question: item.prompt ?? null, answers: item.answers, correct_base: vqaCorrect(base, item.answers) } }),
    flows: Object.fromEntries(Object.entries(r.flows).map(([name, f]) => [name, layerFlow(m, f, base, item.answers)])),
  };
}

/** One flow of a layers / from-last result (README, "knockout"). */
function layerFlow(m: Pick<Vlm, 'decode'>, f: LayerKnockoutFlow, base: string | null, answers: string[] | undefined) {
  const texts = f.tokens?.map((t) => m.decode(t));
  return {
    dst: f.dst,
    src: f.src,
    generated_tokens_are_queries: f.generated,
    window: f.window,
    p: f.p,
    rel_change_pct: f.rel_change_pct,
    top: f.top.map((id) => ({ id, text: m.decode([id]) })),
    ...(texts && base !== null && { answers: texts, same_as_base: texts.map((t) => vqaCorrect(t, [base])) }),
    ...(texts && answers && { correct: texts.map((t) => vqaCorrect(t, answers)) }),
  };
}

function options(m: Pick<Vlm, 'weightDtypes' | 'precision'>, o: KnockoutRun, generate: number): Record<string, unknown> {
  const mode = modeOf(o);
  return {
    ...promptOptions(m, o.prompt, o.padToSquare),
    mode,
    flows: o.flows,
    ...(mode === 'window' ? { window: o.window } : { layers: o.fromLast ? 'from-last: i … L−1 for i = L−1 down to 0' : o.layers, generate }),
    answer: o.answer ?? 'greedy first token of the un-intervened run',
    first_token: o.firstToken,
    seed: o.seed ?? 0,
    mask:
      mode === 'window'
        ? 'pre-softmax −3.4e38 on (DST query, SRC key) in every head of the window; the other weights renormalise'
        : 'pre-softmax −3.4e38 on (DST query, SRC key) in every head of the knocked-out layers, in the prefill and, when DST is text, for every generated token; the other weights renormalise',
    ...(mode !== 'window' && { scoring: 'p at the last prompt position; the greedy answer generated under the knockout: VQA exact match (lower case, no punctuation, spaces collapsed) against the data set\'s answers, and against the un-intervened answer' }),
    ...(o.objectBox && { object_box: o.objectBox }),
  };
}

export interface KnockoutAggregate {
  phaselens_version: string;
  model: string;
  model_family: string;
  n_items: number;
  mode: KnockoutMode;
  options: Record<string, unknown>;
  /** layers / from-last: the un-intervened answer's probability, and VQA accuracy of the un-intervened answers. */
  p_base?: Stat;
  vqa?: { n: number; accuracy_base: number } | null;
  flows: KnockoutFlowStats;
  /** The same per data-set subset (a gqa item's `subset`), when items have one; items without one are left out here. */
  subsets?: Record<string, { n_items: number; flows: KnockoutFlowStats }>;
}

/** Per flow; `centres` in the window mode, `accuracy` / `agreement` in the others (file header). */
type KnockoutFlowStats = Record<string, { centres?: number[]; window: [number, number][]; rel_change_pct: Stat[]; p: Stat[]; accuracy?: (number | null)[]; agreement?: (number | null)[] }>;

/** One item's flow, as finishKnockout reads it (window mode: centres; layers / from-last: the generated answers' scores). */
type ItemFlow = Pick<KnockoutResult['flows'][string], 'window' | 'p' | 'rel_change_pct'> & { centres?: number[]; same_as_base?: boolean[]; correct?: boolean[] };

export function aggregateKnockout(results: readonly KnockoutItem[], head: Omit<KnockoutAggregate, 'flows' | 'subsets' | 'mode' | 'p_base' | 'vqa'>): KnockoutAggregate {
  const mode: KnockoutMode = (results[0]?.mode as KnockoutMode | undefined) ?? 'window';
  const names = [...new Set(results.flatMap((r) => (r.subset === undefined ? [] : [r.subset])))].sort();
  const subsets = Object.fromEntries(
    names.map((name) => {
      const of = results.filter((r) => r.subset === name);
      return [name, { n_items: of.length, flows: flowStats(of) }];
    }),
  );
  const vqa = results.filter((r) => r.vqa);
  const layered =
    mode === 'window'
      ? {}
      : {
          p_base: stat(results.map((r) => r.answer?.p_base)),
          vqa: vqa.length ? { n: vqa.length, accuracy_base: vqa.filter((r) => r.vqa!.correct_base).length / vqa.length } : null,
        };
  return { ...head, mode, ...layered, flows: flowStats(results), ...(names.length && { subsets }) };
}

/** Share of true among the items that have the list (null when none has). */
function share(lists: readonly (boolean[] | undefined)[], i: number): number | null {
  const v = lists.filter((l): l is boolean[] => l !== undefined).map((l) => l[i]);
  return v.length ? v.filter(Boolean).length / v.length : null;
}

function flowStats(results: readonly { flows: Record<string, ItemFlow> }[]): KnockoutFlowStats {
  const flows: KnockoutFlowStats = {};
  const first = results[0];
  for (const [name, f] of Object.entries(first?.flows ?? {})) {
    const all = results.map((r) => r.flows[name]);
    const runs = f.window.map((_, i) => i);
    flows[name] = {
      ...(f.centres && { centres: f.centres }),
      window: f.window,
      rel_change_pct: runs.map((i) => stat(all.map((a) => a.rel_change_pct[i]))),
      p: runs.map((i) => stat(all.map((a) => a.p[i]))),
      ...(!f.centres && { accuracy: runs.map((i) => share(all.map((a) => a.correct), i)), agreement: runs.map((i) => share(all.map((a) => a.same_as_base), i)) }),
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
  /** Absent in results written before the modes (the window sweep). */
  mode?: KnockoutMode;
  options: Record<string, unknown>;
  answer?: { p_base: number };
  vqa?: { correct_base: boolean };
  flows: Record<string, ItemFlow>;
  subset?: string;
}

const csvRow = (...cells: unknown[]) => cells.map((c) => (typeof c === 'string' ? JSON.stringify(c) : (c ?? ''))).join(',');

/** Aggregate, figure and report of per-item results (one run's, or merged shards'); returns the report's path. */
export function finishKnockout(out: string, results: readonly KnockoutItem[], run: RunStatus): string {
  const agg = aggregateKnockout(results, aggregateHead(results));
  writeFileAtomicSync(join(out, 'aggregate.json'), JSON.stringify(agg, null, 1) + '\n');
  return agg.mode === 'window' ? finishWindow(out, agg, run) : finishLayers(out, agg, run);
}

function finishWindow(out: string, agg: KnockoutAggregate, run: RunStatus): string {
  const window = Number(agg.options.window);
  const csv = ['flow,centre,window_lo,window_hi,rel_change_pct_mean,rel_change_pct_std,p_mean,n'];
  for (const [name, f] of Object.entries(agg.flows)) {
    f.centres!.forEach((c, i) => csv.push([JSON.stringify(name), c, ...f.window[i], f.rel_change_pct[i].mean, f.rel_change_pct[i].std ?? '', f.p[i].mean, f.p[i].n].join(',')));
  }
  writeFileAtomicSync(join(out, 'aggregate.csv'), csv.join('\n') + '\n');
  if (agg.subsets) {
    const rows = ['subset,n_items,flow,centre,window_lo,window_hi,rel_change_pct_mean,rel_change_pct_std,p_mean,n'];
    for (const [subset, g] of Object.entries(agg.subsets)) {
      for (const [name, f] of Object.entries(g.flows)) {
        f.centres!.forEach((c, i) => rows.push([JSON.stringify(subset), g.n_items, JSON.stringify(name), c, ...f.window[i], f.rel_change_pct[i].mean, f.rel_change_pct[i].std ?? '', f.p[i].mean, f.p[i].n].join(',')));
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
      series: Object.entries(flows).map(([name, f]) => ({ name, x: f.centres!, stats: f.rel_change_pct })),
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
      rows: Object.entries(agg.flows).flatMap(([name, f]) => f.centres!.map((c, i) => [name, c, `${f.window[i][0]}–${f.window[i][1]}`, f.rel_change_pct[i].mean, f.rel_change_pct[i].std, f.p[i].mean, f.p[i].n])),
    },
  });
}

/** The layers / from-last modes: the study's ablation table (accuracy and p per flow and layer range). */
function finishLayers(out: string, agg: KnockoutAggregate, run: RunStatus): string {
  const flows = Object.entries(agg.flows);
  const head = 'flow,layer_lo,layer_hi,p_mean,p_std,rel_change_pct_mean,accuracy,agreement,n';
  const rows = flows.flatMap(([name, f]) => f.window.map(([lo, hi], i) => csvRow(name, lo, hi, f.p[i].mean, f.p[i].std, f.rel_change_pct[i].mean, f.accuracy![i], f.agreement![i], f.p[i].n)));
  writeFileAtomicSync(join(out, 'aggregate.csv'), [head, ...rows].join('\n') + '\n');
  const scored = agg.vqa ? 'accuracy' : 'agreement';
  const figures =
    agg.mode === 'from-last'
      ? [
          intervalFigure({
            id: 'knockout',
            file: 'knockout_from_last.svg',
            title: `Attention knockout from the last layers back — ${agg.vqa ? 'VQA accuracy' : 'agreement with the un-intervened answer'}`,
            subtitle: `${agg.model_family} ${agg.model} · ${agg.n_items} item(s)`,
            xLabel: 'first knocked-out layer i (layers i … L−1)',
            yLabel: agg.vqa ? 'VQA exact-match accuracy' : 'share of answers as without the knockout',
            series: flows.map(([name, f]) => ({ name, x: f.window.map(([lo]) => lo), stats: f.window.map((_, i) => ({ mean: f[scored]![i], std: null, n: f.p[i].n })) })),
            caption: `For each flow DST<-SRC, attention from DST queries (with DST text: the generated tokens too) to SRC keys is blocked in layers i … L−1, and the answer generated greedily under the knockout is scored${agg.vqa ? ' by VQA exact match' : ' against the un-intervened answer'}.`,
          }),
        ]
      : [];
  return writeInterventionReport(out, {
    title: agg.mode === 'from-last' ? 'Attention knockout from the last layers back' : 'Attention knockout in fixed layers',
    method: 'Attention knockout as in "The Narrow Gate" (arXiv 2412.06646): a flow DST<-SRC blocks every attention edge from a DST query to a SRC key, in every head of the given layers, by a pre-softmax mask (the remaining weights renormalise), in the prefill and — when DST is text — for every generated token. Scored by the answer token\'s probability at the last prompt position and by the answer generated under the knockout.',
    meta: {
      ...runMeta(agg, run),
      'p_base (mean ± std)': `${agg.p_base?.mean} ± ${agg.p_base?.std}`,
      ...(agg.vqa && { 'VQA accuracy without knockout': `${agg.vqa.accuracy_base} (n = ${agg.vqa.n})` }),
      phaselens_version: VERSION,
      ...agg.options,
    },
    figures,
    table: {
      columns: ['flow', 'layers', 'p (mean)', 'std', 'rel. change % (mean)', 'VQA accuracy', 'agreement with un-intervened', 'n'],
      rows: flows.flatMap(([name, f]) => f.window.map(([lo, hi], i) => [name, `${lo}–${hi}`, f.p[i].mean, f.p[i].std, f.rel_change_pct[i].mean, f.accuracy![i], f.agreement![i], f.p[i].n])),
    },
  });
}
