/**
 * `phaselens patch` as a library call: one source/target image pair through the patching
 * or steering sweep (src/interventions/patch.ts), written to OUT/patch.json (README,
 * "patch") with a figure of the logit difference per layer and the report; or, with
 * `--data`, every item of a data set as a target patched from a counterfactual image (the
 * narrow-gate study's steering, arXiv 2412.06646), one resumable JSON per item and the
 * steering success over items.
 *
 * Data-set mode. Item i's source is the next item in data-set order (cyclically) whose
 * label differs from i's (a `labels:` data set), else simply the next item. Unless
 * `--answers` is given, the logit difference of an item is logit[source's top answer] −
 * logit[target's top answer] (the first tokens of the un-patched runs), so it rises when
 * the patch steers the answer towards the source's. OUT/aggregate.json:
 *
 *   {"phaselens_version", "model", "model_family", "n_items", "options": {...},
 *    "site": "lm.blocks.{l}.resid_pre" | "lm.blocks.{l..L-1}.resid_pre",
 *    "n_steerable": n,                 items whose source and target top answers differ
 *    "per_layer": [{"layer": l,
 *       "success": number | null,      share of the steerable items whose patched top
 *                                      answer is the source's top answer (null: none)
 *       "logit_diff": Stat,            the patched logit difference, over all items
 *       "shift": Stat}]}               patched − un-patched target logit difference
 *                                      Stat = {"mean", "std", "n"}
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { UserError } from '../errors.ts';
import { readImageFile } from '../io/load-node.ts';
import { parseLayers } from '../interventions/ablate.ts';
import { patchSweep, type PatchEdit } from '../interventions/patch.ts';
import type { ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { stat } from '../analysis/aggregate.ts';
import { intervalFigure } from '../report/intervention-figures.ts';
import { aggregateHead, runMeta, writeFileAtomicSync, writeInterventionReport, type RunStatus } from './outputs.ts';
import { VERSION } from '../version.ts';
import { groupPositions, itemPrompt, parseAnswer, PROBE_IMAGE, promptOptions, resultHeader } from './items.ts';
import type { DataItem } from '../data/index.ts';
import { readResult, runItems, type RunSummary } from './runner.ts';

/** What one pair and a data set of pairs share. */
interface PatchSite {
  out: string;
  prompt: PromptSpec;
  padToSquare: boolean;
  token: string;
  /** Two comma-separated answers, e.g. "cat,dog" (patch --data: instead of each pair's top answers). */
  answers?: string;
  firstToken: boolean;
  /** all, 0-31, 3,5 (default all); or `every`. */
  layers?: string;
  every?: number;
  fromLayerOn: boolean;
}

export interface PatchRun extends PatchSite {
  source?: string;
  target: string;
  /** Steering instead of patching: the vector and its scale. */
  add?: { vector: Float32Array; scale: number; file: string };
}

/** Every `--every k`-th layer, 0, k, 2k, … (each its own run, as a --layers list). */
export function everyKth(k: number, L: number): number[] {
  if (!Number.isInteger(k) || k < 1) throw new UserError(`--every must be a positive integer, got ${k}`);
  return Array.from({ length: Math.ceil(L / k) }, (_, i) => i * k);
}

/** The reported layers: --every k, else --layers (default all). */
function layersOf(o: Pick<PatchRun, 'layers' | 'every'>, L: number): number[] {
  if (o.every !== undefined && o.layers !== undefined) throw new UserError('give either --layers or --every, not both');
  return o.every !== undefined ? everyKth(o.every, L) : parseLayers(o.layers ?? 'all', L);
}

export function parseAnswerPair(m: Pick<ModelInfo, 'tokenizer' | 'lm'>, answers: string, firstToken: boolean): { words: [string, string]; ids: [number, number] } {
  const words = answers.split(',').map((w) => w.trim());
  if (words.length !== 2 || words.some((w) => !w)) throw new UserError(`--answers ${JSON.stringify(answers)}: give two answers, e.g. "cat,dog"`);
  const ids = words.map((w) => parseAnswer(m, w, firstToken, '--answers')) as [number, number];
  return { words: words as [string, string], ids };
}

/** The prepared target run and, when patching, the source run. */
export interface PatchInputs {
  target: VlmInput;
  source?: VlmInput;
}

/** Every flag checked and both images read and prepared, before any weight loads. */
export function checkPatch(m: ModelInfo, o: PatchRun): PatchInputs {
  if (!o.add && !o.source) throw new UserError('give --source IMG (patching) or --add VEC.safetensors (steering)');
  if (o.add && o.source) throw new UserError('give either --source (patching) or --add (steering), not both');
  const prompt = itemPrompt(m, {}, o.prompt);
  const prepare = (image: string) => m.prepare(prompt, readImageFile(image), { padToSquare: o.padToSquare });
  const target = prepare(o.target);
  const source = o.source ? prepare(o.source) : undefined;
  groupPositions(o.token, target);
  layersOf(o, m.lm.num_hidden_layers);
  if (o.answers === undefined) throw new UserError('--answers A,B is needed with --target (with --data the answers are each pair\'s top answers)');
  parseAnswerPair(m, o.answers, o.firstToken);
  if (o.add && o.add.vector.length !== m.lm.hidden_size) throw new UserError(`${o.add.file}: the vector has ${o.add.vector.length} values; the residual stream has ${m.lm.hidden_size}`);
  return { target, source };
}

/** The sweep over the inputs `checkPatch` prepared. */
export async function patch(gpu: Gpu, m: Vlm, o: PatchRun, { target, source }: PatchInputs): Promise<{ file: string; report: string }> {
  const group = groupPositions(o.token, target);
  const layers = layersOf(o, m.lm.num_hidden_layers);
  const answers = parseAnswerPair(m, o.answers!, o.firstToken);
  const edit: PatchEdit = o.add ? { mode: 'add', vector: o.add.vector, scale: o.add.scale } : { mode: 'copy', source: source! };
  const r = await patchSweep(gpu, m, target, { group, edit, layers, fromLayerOn: o.fromLayerOn, answers: answers.ids });
  const top = (id: number) => ({ id, text: m.decode([id]) });
  const result = {
    phaselens_version: VERSION,
    model: m.name,
    model_family: m.family,
    source: o.source ?? null,
    target: o.target,
    group,
    site: o.fromLayerOn ? 'lm.blocks.{l..L-1}.resid_pre' : 'lm.blocks.{l}.resid_pre',
    mode: o.add ? 'add' : 'copy',
    options: {
      ...promptOptions(m, o.prompt, o.padToSquare),
      token: o.token,
      layers: o.every !== undefined ? `every ${o.every} layers: ${layers.join(',')}` : (o.layers ?? 'all'),
      from_layer_on: o.fromLayerOn,
      ...(o.add ? { add: o.add.file, scale: o.add.scale } : {}),
    },
    answers: { [answers.words[0]]: answers.ids[0], [answers.words[1]]: answers.ids[1] },
    base_target: { logit_diff: r.base_target.logit_diff, top_answer: top(r.base_target.top_answer) },
    base_source: r.base_source ? { logit_diff: r.base_source.logit_diff, top_answer: top(r.base_source.top_answer) } : null,
    per_layer: r.per_layer.map((p) => ({ layer: p.layer, logit_diff: p.logit_diff, top_answer: top(p.top_answer) })),
  };
  const file = join(o.out, 'patch.json');
  mkdirSync(o.out, { recursive: true });
  writeFileAtomicSync(file, JSON.stringify(result, null, 1) + '\n');
  const flat = (v: number) => layers.map(() => stat([v]));
  const diffName = `logit[${answers.words[0]}] − logit[${answers.words[1]}]`;
  const figure = intervalFigure({
    id: 'patch',
    file: 'patch_logit_diff.svg',
    title: o.add ? 'Steering — logit difference per layer' : 'Activation patching — logit difference per layer',
    subtitle: `${m.family} ${m.name} · group ${o.token} (${group.length} positions)${o.fromLayerOn ? ' · from layer l on' : ' · at layer l only'}`,
    xLabel: 'decoder layer l (residual stream entering it)',
    yLabel: diffName,
    series: [
      { name: o.add ? `target + ${o.add.scale}·vector` : 'target patched from source', x: layers, stats: r.per_layer.map((p) => stat([p.logit_diff])) },
      { name: 'target (no edit)', x: layers, stats: flat(r.base_target.logit_diff) },
      ...(r.base_source ? [{ name: 'source (no edit)', x: layers, stats: flat(r.base_source.logit_diff) }] : []),
    ],
    caption: `${diffName} at the last position after ${o.add ? 'adding the scaled vector to' : 'copying the source run\'s rows into'} the residual stream of the group's positions at layer l${o.fromLayerOn ? ' and every later layer' : ''}.`,
  });
  const report = writeInterventionReport(o.out, {
    title: o.add ? 'Steering' : 'Activation patching',
    method: 'Patching / steering as in "The Narrow Gate" (arXiv 2412.06646): the residual stream entering decoder layer l (lm.blocks.{l}.resid_pre) at a token group is replaced by the source run\'s, or a vector is added to it.',
    meta: { model: m.name, family: m.family, source: o.source ?? '—', target: o.target, group: group.join(','), answers: JSON.stringify(result.answers), phaselens_version: VERSION, ...result.options },
    figures: [figure],
    table: { columns: ['layer', diffName, 'top answer'], rows: result.per_layer.map((p) => [p.layer, p.logit_diff, `${p.top_answer.text} (${p.top_answer.id})`]) },
  });
  return { file, report };
}

/** `patch --data`: every item a target, patched from its counterfactual source (file header). */
export interface PatchSetRun extends PatchSite {
  data: string;
  /** With the item's id, draws `random-image`. */
  seed: number;
}

/** Each item's source: the next item (cyclically) with another label, else the next item (file header). */
export function pairSources(items: readonly DataItem[]): Map<string, DataItem> {
  if (items.length < 2) throw new UserError(`patching over a data set pairs each image with another one: it needs at least two items, this run has ${items.length}`);
  const labelled = items.every((it) => it.label !== undefined);
  const out = new Map<string, DataItem>();
  items.forEach((it, i) => {
    for (let j = 1; j < items.length; j++) {
      const s = items[(i + j) % items.length];
      if (!labelled || s.label !== it.label) {
        out.set(it.id, s);
        return;
      }
    }
    throw new UserError(`every item has the label ${JSON.stringify(it.label)}: patching from a counterfactual image needs items of at least two labels`);
  });
  return out;
}

/** Every flag checked on a stand-in input, before any weight loads. */
export function checkPatchSet(m: ModelInfo, o: PatchSetRun, items: readonly DataItem[]): void {
  pairSources(items);
  const x = m.prepare(itemPrompt(m, items[0] ?? {}, o.prompt), PROBE_IMAGE, { padToSquare: o.padToSquare });
  groupPositions(o.token, x);
  layersOf(o, m.lm.num_hidden_layers);
  if (o.answers !== undefined) parseAnswerPair(m, o.answers, o.firstToken);
}

const siteOf = (fromLayerOn: boolean) => (fromLayerOn ? 'lm.blocks.{l..L-1}.resid_pre' : 'lm.blocks.{l}.resid_pre');

export async function patchSetItem(gpu: Gpu, m: Vlm, item: DataItem, source: DataItem, o: PatchSetRun): Promise<Record<string, unknown>> {
  // the source image under the target's prompt: only the image differs
  const prompt = itemPrompt(m, item, o.prompt);
  const prepare = (image: string) => m.prepare(prompt, readImageFile(image), { padToSquare: o.padToSquare });
  const target = prepare(item.image);
  const group = groupPositions(o.token, target, { key: item.id, seed: o.seed });
  const layers = layersOf(o, m.lm.num_hidden_layers);
  const fixed = o.answers === undefined ? undefined : parseAnswerPair(m, o.answers, o.firstToken).ids;
  const r = await patchSweep(gpu, m, target, { group, edit: { mode: 'copy', source: prepare(source.image) }, layers, fromLayerOn: o.fromLayerOn, answers: fixed });
  const top = (id: number) => ({ id, text: m.decode([id]) });
  const src = r.base_source!;
  return {
    ...resultHeader(m, item),
    source: { id: source.id, image: source.image, ...(source.label !== undefined && { label: source.label }) },
    ...(item.label !== undefined && { label: item.label }),
    group,
    site: siteOf(o.fromLayerOn),
    options: setOptions(m, o),
    answers: { ids: r.answers, texts: r.answers.map((id) => m.decode([id])), from: fixed ? '--answers' : 'top answers of the source and the target' },
    base_target: { logit_diff: r.base_target.logit_diff, top_answer: top(r.base_target.top_answer) },
    base_source: { logit_diff: src.logit_diff, top_answer: top(src.top_answer) },
    steerable: src.top_answer !== r.base_target.top_answer,
    per_layer: r.per_layer.map((p) => ({
      layer: p.layer,
      logit_diff: p.logit_diff,
      shift: p.logit_diff - r.base_target.logit_diff,
      top_answer: top(p.top_answer),
      steered: p.top_answer === src.top_answer,
    })),
  };
}

function setOptions(m: Pick<Vlm, 'weightDtypes' | 'precision'>, o: PatchSetRun): Record<string, unknown> {
  return {
    ...promptOptions(m, o.prompt, o.padToSquare),
    token: o.token,
    layers: o.every !== undefined ? `every ${o.every} layers from 0` : (o.layers ?? 'all'),
    from_layer_on: o.fromLayerOn,
    seed: o.seed,
    source: 'the next item in data-set order (cyclically) with another label, else the next item; the target\'s prompt',
    answers: o.answers ?? 'logit[source\'s top answer] − logit[target\'s top answer], the un-patched runs\' first tokens',
  };
}

/** What finishPatchSet reads of a per-item result. */
export interface PatchSetItem {
  model: string;
  model_family: string;
  site: string;
  options: Record<string, unknown>;
  steerable: boolean;
  per_layer: { layer: number; logit_diff: number; shift: number; steered: boolean }[];
}

export async function patchSet(gpu: Gpu, m: Vlm, items: readonly DataItem[], o: PatchSetRun): Promise<{ summary: RunSummary; report: string }> {
  const sources = pairSources(items);
  const summary = await runItems(items, o.out, (item) => patchSetItem(gpu, m, item, sources.get(item.id)!, o), { progress: { label: 'patch', unit: 'img' } });
  const results = items.map((i) => readResult(o.out, i.id)).filter((r): r is PatchSetItem => r !== null);
  return { summary, report: finishPatchSet(o.out, results, { data: o.data, failed: summary.failed, missing: summary.missing.length }) };
}

/** Aggregate (file header), figure and report of per-item results; returns the report's path. */
export function finishPatchSet(out: string, results: readonly PatchSetItem[], run: RunStatus): string {
  const first = results[0];
  const steerable = results.filter((r) => r.steerable);
  const layers = first?.per_layer.map((p) => p.layer) ?? [];
  const agg = {
    ...aggregateHead(results),
    site: first?.site ?? '—',
    n_steerable: steerable.length,
    per_layer: layers.map((layer, i) => ({
      layer,
      success: steerable.length ? steerable.filter((r) => r.per_layer[i].steered).length / steerable.length : null,
      logit_diff: stat(results.map((r) => r.per_layer[i].logit_diff)),
      shift: stat(results.map((r) => r.per_layer[i].shift)),
    })),
  };
  writeFileAtomicSync(join(out, 'aggregate.json'), JSON.stringify(agg, null, 1) + '\n');
  const csv = ['layer,success,shift_mean,shift_std,logit_diff_mean,n,n_steerable', ...agg.per_layer.map((p) => [p.layer, p.success ?? '', p.shift.mean, p.shift.std ?? '', p.logit_diff.mean, p.shift.n, agg.n_steerable].join(','))];
  writeFileAtomicSync(join(out, 'aggregate.csv'), csv.join('\n') + '\n');
  const on = first?.site.includes('..') ? ' and every later layer' : '';
  const figure = intervalFigure({
    id: 'patch',
    file: 'patch_steering.svg',
    title: 'Steering by patching — share of answers turned into the source image\'s',
    subtitle: `${agg.model_family} ${agg.model} · group ${String(agg.options.token)} · ${agg.n_steerable} of ${agg.n_items} item(s) steerable`,
    xLabel: `decoder layer l patched${on}`,
    yLabel: 'steering success',
    series: [{ name: 'success', x: layers, stats: agg.per_layer.map((p) => ({ mean: p.success, std: null, n: agg.n_steerable })) }],
    caption: `The residual stream entering layer l${on} at the group's positions is copied from the run on another image (same prompt); success = the share of items whose source and target top answers differ for which the patched top answer is the source's.`,
  });
  return writeInterventionReport(out, {
    title: 'Steering by activation patching',
    method: 'Activation patching as in "The Narrow Gate" (arXiv 2412.06646): the residual stream entering decoder layer l (lm.blocks.{l}.resid_pre) at a token group — the end-of-image token in the study — is replaced by the run\'s on a counterfactual image; the patched answer is compared with the source image\'s.',
    meta: { ...runMeta(agg, run), site: agg.site, steerable: agg.n_steerable, phaselens_version: VERSION, ...agg.options },
    figures: [figure],
    table: { columns: ['layer', 'success', 'shift of the logit difference (mean)', 'std', 'logit difference (mean)', 'n'], rows: agg.per_layer.map((p) => [p.layer, p.success, p.shift.mean, p.shift.std, p.logit_diff.mean, p.shift.n]) },
  });
}
