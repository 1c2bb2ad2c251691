/**
 * `phaselens gate` as a library call: every item of a data set through the narrow-gate
 * measures (src/probes/gate.ts: modality separation per hidden state, cross-modal
 * attention share per image-side position per layer), one resumable JSON per item
 * (README, "gate"), then the aggregate (mean ± sample std over items per layer,
 * analysis/gate-aggregate.ts), its figures (report/gate-figures.ts) and OUT/report.html.
 * With a labelled data set (`labels:`), each item also leaves the rows of its candidate
 * positions at every hidden state in OUT/rows/<id>.safetensors, and the aggregate adds
 * their neighbourhood overlap over the whole set (analysis/neighbourhood-overlap.ts).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import type { Stat } from '../analysis/aggregate.ts';
import { aggregateGate, type GateAggregate, type GateItemResult, type OverlapResult } from '../analysis/gate-aggregate.ts';
import type { DataItem } from '../data/index.ts';
import { chanceOverlap, neighbourhoodOverlap } from '../analysis/neighbourhood-overlap.ts';
import { UserError } from '../errors.ts';
import { encodeHeader } from '../io/safetensors-write.ts';
import { parseHeader } from '../io/safetensors.ts';
import type { ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { gatePositions, gateProbe, gateQueries, imageTokens, overlapCandidates, selectGatePositions, separationText } from '../probes/gate.ts';
import { itemPrompt, prepareItem, PROBE_IMAGE, promptOptions, resultHeader } from './items.ts';
import { runMeta, writeFileAtomicSync, writeInterventionReport, type RunStatus } from './outputs.ts';
import { gateFigures } from '../report/gate-figures.ts';
import type { InterventionReport } from '../report/intervention-html.ts';
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
  /** Neighbourhood size of the overlap (labelled data sets only; default OVERLAP_K). */
  k?: number;
}

export const OVERLAP_K = 30;
export const ROWS_SUBDIR = 'rows';

/** Every flag checked on a stand-in input, before any weight loads (`items`: the run's). */
export function checkGate(m: ModelInfo, o: GateRun, items: readonly DataItem[]): void {
  const x = m.prepare(itemPrompt(m, items[0] ?? {}, o.prompt), PROBE_IMAGE, { padToSquare: o.padToSquare });
  plan(m, x, o);
  const labelled = items.length > 0 && items.every((it) => it.label !== undefined);
  if (!labelled && o.k !== undefined) throw new UserError('--k is the neighbourhood size of the overlap, which needs a labelled data set (--data labels:FILE.jsonl:IMAGES_DIR)');
  const k = o.k ?? OVERLAP_K;
  if (labelled && k >= items.length) throw new UserError(`neighbourhood overlap with k = ${k} needs more than k samples; this run has ${items.length} (use a smaller --k or more images)`);
  if (labelled && overlapCandidates(gatePositions(x.groups)).length === 0) throw new UserError(`${m.name} has no one-position image-side group for neighbourhood overlap`);
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

export async function gateItem(gpu: Gpu, m: Vlm, item: DataItem, o: GateRun): Promise<Record<string, unknown>> {
  const x = prepareItem(m, item, o.prompt, o.padToSquare);
  const p = plan(m, x, o);
  const candidates = item.label === undefined ? [] : overlapCandidates(p.side);
  const probe = gateProbe(gpu, m.languageModel, { ...p, bins: o.bins, rows: candidates.map((c) => c.positions[0]) });
  await m.hooks.withHooks(probe.hooks, async () => {
    gpu.release(m.forward(gpu, x));
  });
  const r = await probe.result();
  // the rows go to disk first: a result on disk always has its rows
  if (r.rows) writeRows(o.out, item.id, r.rows, candidates.map((c) => c.name));
  return {
    ...resultHeader(m, item),
    ...(item.label !== undefined && { label: item.label, overlap_candidates: candidates.map((c) => c.name) }),
    options: { ...options(m, o), ...(item.label !== undefined && { overlap_k: o.k ?? OVERLAP_K }) },
    tokens: { seq: x.ids.length, image: p.image.length, text: p.text.length, queries: p.queries, image_side: Object.fromEntries(p.side.map((s) => [s.name, s.positions])) },
    separation: { ...r.separation, bins: o.bins, resolution: 1 / o.bins },
    attention: r.attention,
  };
}

function options(m: Pick<Vlm, 'weightDtypes' | 'precision'>, o: GateRun): Record<string, unknown> {
  return {
    ...promptOptions(m, o.prompt, o.padToSquare),
    drop_bos: o.dropBos,
    positions: o.positions.length ? o.positions : 'every image-side position the model has',
    hidden_states: 'HF output_hidden_states: 0 = input embeddings, l = output of decoder layer l, L = after the final norm; last_layer_prenorm = layer L before it',
    separation: `|cos| of every image token × text token pair (text: every non-image position but the start/end-of-image tokens${o.dropBos ? ' and BOS' : ''}), histogram of ${o.bins} bins on [0, 1]; quantiles read off the cumulative histogram, interpolated inside a bin (resolution ${1 / o.bins})`,
    attention: 'softmax weights of every text query after the image, from the layer\'s own q and k, averaged over heads, summed per image-side group, averaged over the queries; share = that / the sum over every image-side group; per_token = share / the group\'s size; of_all = the mass itself (of the queries\' total attention, 1)',
  };
}

/** OUT/rows/<id>.safetensors: "rows" F32 [L + 1, P, d], the candidates' names in the metadata. */
function rowsPath(out: string, id: string): string {
  return join(out, ROWS_SUBDIR, `${id}.safetensors`);
}

function writeRows(out: string, id: string, rows: { data: Float32Array; shape: number[] }, names: string[]): void {
  mkdirSync(join(out, ROWS_SUBDIR), { recursive: true });
  const header = encodeHeader([{ name: 'rows', dtype: 'F32', shape: rows.shape }], { candidates: names.join(','), hidden_states: 'HF index 0..L' });
  const bytes = new Uint8Array(header.byteLength + rows.data.byteLength);
  bytes.set(header);
  bytes.set(new Uint8Array(rows.data.buffer, rows.data.byteOffset, rows.data.byteLength), header.byteLength);
  writeFileAtomicSync(rowsPath(out, id), bytes);
}

function readRows(out: string, id: string): { data: Float32Array; shape: number[] } {
  const path = rowsPath(out, id);
  if (!existsSync(path)) throw new UserError(`${path}: missing (the candidate rows of item ${id}, written with its result); delete ${join(out, 'images', `${id}.json`)} and re-run to redo it`);
  const bytes = readFileSync(path);
  const n = bytes.length >= 8 ? Number(bytes.readBigUInt64LE(0)) : 0;
  const t = parseHeader(path, bytes.length, n, bytes.subarray(8, 8 + n).toString('utf8')).tensors.get('rows');
  if (!t || t.dtype !== 'F32') throw new UserError(`${path}: no F32 tensor "rows"`);
  const buf = bytes.buffer.slice(bytes.byteOffset + t.offset, bytes.byteOffset + t.offset + t.byteLength);
  return { data: new Float32Array(buf), shape: t.shape };
}

/** Neighbourhood overlap of every candidate at every hidden state, over the labelled results. */
export function overlapOf(out: string, results: readonly GateItemResult[]): OverlapResult | undefined {
  const labelled = results.filter((r) => r.label !== undefined);
  if (labelled.length === 0) return undefined;
  const k = Number(labelled[0].options.overlap_k);
  if (labelled.length <= k) throw new UserError(`neighbourhood overlap with k = ${k}: only ${labelled.length} item(s) have a result (the others failed or are missing); it needs more than k`);
  const labels = labelled.map((r) => r.label!);
  const rows = labelled.map((r) => readRows(out, r.id));
  const [Lp1, P, d] = rows[0].shape;
  const positions: OverlapResult['positions'] = {};
  labelled[0].overlap_candidates!.forEach((name, p) => {
    positions[name] = Array.from({ length: Lp1 }, (_, l) => {
      const vs = rows.map((r) => r.data.subarray((l * P + p) * d, (l * P + p + 1) * d));
      return vs.every((v) => v.every((x, c) => x === vs[0][c])) ? null : neighbourhoodOverlap(vs, labels, k);
    });
  });
  return { k, n_samples: labelled.length, classes: new Set(labels).size, chance: chanceOverlap(labels), positions };
}

/**
 * Writes OUT/aggregate.json, OUT/aggregate.csv (one row per measure and layer), the figures
 * (report/gate-figures.ts) and OUT/report.html; returns the report's path.
 */
export function finishGate(out: string, results: readonly GateItemResult[], run: RunStatus): string {
  const overlap = overlapOf(out, results);
  const agg: GateAggregate = { ...aggregateGate(results, { phaselens_version: VERSION, run }), ...(overlap && { neighbourhood_overlap: overlap }) };
  const path = join(out, 'aggregate.json');
  writeFileAtomicSync(path, JSON.stringify(agg, null, 1) + '\n');
  const csv = ['measure,group,layer,mean,std,n'];
  const rows = (measure: string, group: string, s: Stat[]) => s.forEach((v, l) => csv.push([measure, group, l, v.mean ?? '', v.std ?? '', v.n].join(',')));
  for (const k of ['q1', 'median', 'q3'] as const) rows(`separation_${k}`, '', agg.separation[k]);
  for (const [name, g] of Object.entries(agg.attention.groups)) for (const k of ['share', 'per_token', 'of_all'] as const) rows(`attention_${k}`, name, g[k]);
  rows('attention_of_all', 'image-side', agg.attention.image_side_of_all);
  for (const [name, v] of Object.entries(overlap?.positions ?? {})) v.forEach((x, l) => csv.push(['neighbourhood_overlap', name, l, x ?? '', '', overlap!.n_samples].join(',')));
  writeFileAtomicSync(join(out, 'aggregate.csv'), csv.join('\n') + '\n');
  return writeInterventionReport(out, gateReport(agg, run));
}

/** One run's report: its metadata, the figures, and per layer l hidden state l's separation next to decoder layer l's shares. */
function gateReport(agg: GateAggregate, run: RunStatus): InterventionReport {
  const groups = Object.entries(agg.attention.groups);
  const overlap = Object.entries(agg.neighbourhood_overlap?.positions ?? {});
  return {
    title: 'The narrow-gate measures',
    method: 'The measures of "The Narrow Gate" (arXiv 2412.06646), per layer: how far apart image and text tokens stay in the residual stream (|cos| quartiles), which image-side position the text\'s attention reaches the image through, and (labelled data sets) at which position the image\'s class can be read off its neighbours.',
    meta: {
      ...runMeta(agg, run),
      phaselens_version: agg.phaselens_version,
      ...(agg.neighbourhood_overlap && { 'neighbourhood overlap': `k = ${agg.neighbourhood_overlap.k}, ${agg.neighbourhood_overlap.n_samples} samples, ${agg.neighbourhood_overlap.classes} classes, chance ${agg.neighbourhood_overlap.chance}` }),
      ...agg.options,
    },
    figures: gateFigures(agg),
    table: {
      columns: ['l', '|cos| q1 (hidden state l)', 'median', 'q3', ...groups.map(([g]) => `share ${g} (decoder layer l)`), ...overlap.map(([c]) => `overlap ${c} (hidden state l)`)],
      rows: agg.separation.median.map((m, l) => [
        l,
        agg.separation.q1[l].mean,
        m.mean,
        agg.separation.q3[l].mean,
        ...groups.map(([, g]) => g.share[l]?.mean),
        ...overlap.map(([, v]) => v[l]),
      ]),
    },
  };
}

export async function gate(gpu: Gpu, m: Vlm, items: readonly DataItem[], o: GateRun): Promise<{ summary: RunSummary; report: string }> {
  const summary = await runItems(items, o.out, (item) => gateItem(gpu, m, item, o), { progress: { label: 'gate', unit: 'img' } });
  const results = items.map((i) => readResult(o.out, i.id)).filter((r): r is GateItemResult => r !== null);
  return { summary, report: finishGate(o.out, results, { data: o.data, failed: summary.failed, missing: summary.missing.length }) };
}
