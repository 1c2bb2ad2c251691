/**
 * `phaselens ablate` as a library call: every item with and without a token ablation
 * (src/interventions/ablate.ts) — the answer's probability at the last prompt position,
 * the greedy answers, and for a VQA data set exact-match accuracy — optionally swept over
 * single layers; one resumable JSON per item (README, "ablate"), the aggregate, a figure
 * and the report.
 */
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { stat } from '../analysis/aggregate.ts';
import { readResult, runItems, type RunSummary } from './runner.ts';
import { vqaCorrect } from '../analysis/vqa-score.ts';
import type { DataItem } from '../data/index.ts';
import { ablationHooks, kvHeads, parseLayers, type Ablation } from '../interventions/ablate.ts';
import { runLast } from '../interventions/answer.ts';
import { generate } from '../models/generate.ts';
import type { ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { intervalFigure } from '../report/intervention-figures.ts';
import { aggregateHead, runMeta, writeFileAtomicSync, writeInterventionReport, type RunStatus } from './outputs.ts';
import { VERSION } from '../version.ts';
import { groupPositions, itemPrompt, parseAnswer, prepareItem, PROBE_IMAGE, promptOptions, resultHeader } from './items.ts';

export interface AblateRun {
  out: string;
  data: string;
  prompt: PromptSpec;
  padToSquare: boolean;
  /** Group spec of the ablated key positions, e.g. `@575` or `image`. */
  token: string;
  /** `all`, `0-31`, `3,5`. */
  layers: string;
  heads: number[] | null;
  /** Also ablate each single layer of `layers` on its own. */
  sweep: boolean;
  maxNewTokens: number;
  answer?: string;
  firstToken: boolean;
  /** --seed (default 0): with the item's id, draws `random-image`. */
  seed?: number;
}

export function checkAblate(m: ModelInfo, o: AblateRun, first?: DataItem): void {
  const x = m.prepare(itemPrompt(m, first ?? {}, o.prompt), PROBE_IMAGE);
  groupPositions(o.token, x);
  parseLayers(o.layers, m.lm.num_hidden_layers);
  kvHeads(m.lm, o.heads);
  if (o.answer !== undefined) parseAnswer(m, o.answer, o.firstToken);
}

async function withAblation<T>(gpu: Gpu, m: Vlm, x: VlmInput, a: Ablation, body: () => Promise<T>): Promise<T> {
  const { hooks, release } = ablationHooks(gpu, m.lm, x.ids.length, a);
  try {
    return await m.hooks.withHooks(hooks, body);
  } finally {
    release();
  }
}

export async function ablateItem(gpu: Gpu, m: Vlm, item: DataItem, o: AblateRun): Promise<Record<string, unknown>> {
  const x = prepareItem(m, item, o.prompt, o.padToSquare);
  const keys = groupPositions(o.token, x, { key: item.id, seed: o.seed ?? 0 });
  const layers = parseLayers(o.layers, m.lm.num_hidden_layers);
  const lm = m.languageModel;
  const base = await runLast(gpu, lm, () => m.forward(gpu, x));
  const answer = o.answer === undefined ? base.top : parseAnswer(m, o.answer, o.firstToken);
  const pBase = base.p(answer);
  const a: Ablation = { keys, layers, heads: o.heads };
  const after = await withAblation(gpu, m, x, a, () => runLast(gpu, lm, () => m.forward(gpu, x)));
  const baseText = m.decode((await generate(gpu, m, x, o.maxNewTokens)).tokens);
  const afterText = m.decode((await withAblation(gpu, m, x, a, () => generate(gpu, m, x, o.maxNewTokens))).tokens);
  const perLayer = [];
  if (o.sweep) {
    for (const l of layers) {
      const r = await withAblation(gpu, m, x, { ...a, layers: [l] }, () => runLast(gpu, lm, () => m.forward(gpu, x)));
      perLayer.push({ layer: l, p_answer: r.p(answer), p_drop: pBase - r.p(answer), argmax: r.top });
    }
  }
  return {
    ...resultHeader(m, item),
    options: options(m, o),
    answer: { id: answer, text: m.decode([answer]), p_base: pBase },
    ablation: {
      token: keys,
      layers,
      heads: o.heads,
      answer_after: { id: after.top, text: m.decode([after.top]) },
      p_answer: after.p(answer),
      p_drop: pBase - after.p(answer),
    },
    generation: { max_new_tokens: o.maxNewTokens, base: baseText, ablated: afterText },
    ...(item.answers ? { vqa: { question: item.prompt ?? null, answers: item.answers, correct_base: vqaCorrect(baseText, item.answers), correct_ablated: vqaCorrect(afterText, item.answers) } } : {}),
    ...(o.sweep ? { per_layer: perLayer } : {}),
  };
}

function options(m: Pick<Vlm, 'weightDtypes' | 'precision'>, o: AblateRun): Record<string, unknown> {
  return {
    ...promptOptions(m, o.prompt, o.padToSquare),
    token: o.token,
    layers: o.layers,
    heads: o.heads ?? 'all',
    sweep: o.sweep,
    max_new_tokens: o.maxNewTokens,
    answer: o.answer ?? 'greedy first token of the un-intervened run',
    seed: o.seed ?? 0,
    ablation: 'post-softmax attention weights from every query to the ablated keys set to 0, no renormalisation, in prefill and generation',
  };
}

/** What finishAblate reads of a per-item result. */
export interface AblateItem {
  model: string;
  model_family: string;
  options: Record<string, unknown>;
  answer: { p_base: number };
  ablation: { p_answer: number; p_drop: number };
  vqa?: { correct_base: boolean; correct_ablated: boolean };
  per_layer?: { layer: number; p_drop: number }[];
}

export async function ablate(gpu: Gpu, m: Vlm, items: readonly DataItem[], o: AblateRun): Promise<{ summary: RunSummary; report: string }> {
  const summary = await runItems(items, o.out, (item) => ablateItem(gpu, m, item, o), { progress: { label: 'ablate', unit: 'img' } });
  const results = items.map((i) => readResult(o.out, i.id)).filter((r): r is AblateItem => r !== null);
  return { summary, report: finishAblate(o.out, results, { data: o.data, failed: summary.failed, missing: summary.missing.length }) };
}

/** Aggregate, figure and report of per-item results (one run's, or merged shards'); returns the report's path. */
export function finishAblate(out: string, results: readonly AblateItem[], run: RunStatus): string {
  const first = results[0];
  const opts = (first?.options ?? {}) as { token?: string; layers?: string; sweep?: boolean };
  const vqa = results.filter((r) => r.vqa);
  const acc = (k: 'correct_base' | 'correct_ablated') => (vqa.length ? vqa.filter((r) => r.vqa![k]).length / vqa.length : null);
  const layers = results[0]?.per_layer?.map((p) => p.layer) ?? [];
  const agg = {
    ...aggregateHead(results),
    p_base: stat(results.map((r) => r.answer.p_base)),
    p_answer: stat(results.map((r) => r.ablation.p_answer)),
    p_drop: stat(results.map((r) => r.ablation.p_drop)),
    vqa: vqa.length ? { n: vqa.length, accuracy_base: acc('correct_base'), accuracy_ablated: acc('correct_ablated') } : null,
    per_layer: layers.map((l, i) => ({ layer: l, p_drop: stat(results.map((r) => r.per_layer?.[i]?.p_drop)) })),
  };
  writeFileAtomicSync(join(out, 'aggregate.json'), JSON.stringify(agg, null, 1) + '\n');
  const csv = ['layer,p_drop_mean,p_drop_std,n', `${JSON.stringify(opts.layers)},${agg.p_drop.mean},${agg.p_drop.std ?? ''},${agg.p_drop.n}`];
  for (const p of agg.per_layer) csv.push(`${p.layer},${p.p_drop.mean},${p.p_drop.std ?? ''},${p.p_drop.n}`);
  writeFileAtomicSync(join(out, 'aggregate.csv'), csv.join('\n') + '\n');
  const figure = opts.sweep
    ? intervalFigure({
        id: 'ablate',
        file: 'ablate_p_drop.svg',
        title: 'Token ablation — drop of the answer probability per layer',
        subtitle: `${agg.model_family} ${agg.model} · ablated keys ${opts.token} · mean over ${agg.n_items} item(s)`,
        xLabel: 'decoder layer ablated (alone)',
        yLabel: 'p_base − p_ablated',
        series: [{ name: `ablate ${opts.token}`, x: layers, stats: agg.per_layer.map((p) => p.p_drop) }],
        caption: 'Attention weights from every query to the ablated keys zeroed after the softmax (no renormalisation) in one layer at a time; drop of the answer token probability at the last position, mean ± 1 sample std over items.',
      })
    : intervalFigure({
        id: 'ablate',
        file: 'ablate_p.svg',
        title: 'Token ablation — answer probability per item',
        subtitle: `${agg.model_family} ${agg.model} · ablated keys ${opts.token} in layers ${opts.layers}`,
        xLabel: 'item (in data set order)',
        yLabel: 'p(answer)',
        series: [
          { name: 'base', x: results.map((_, i) => i), stats: results.map((r) => stat([r.answer.p_base])) },
          { name: 'ablated', x: results.map((_, i) => i), stats: results.map((r) => stat([r.ablation.p_answer])) },
        ],
        caption: 'Probability of the answer token at the last position without and with the ablation (post-softmax zeroing of the attention to the ablated keys, no renormalisation).',
      });
  return writeInterventionReport(out, {
    title: 'Token ablation',
    method: 'Token ablation as in "The Narrow Gate: Localized Image-Text Communication in Vision-Language Models" (arXiv 2412.06646): the attention weights from every query to the chosen key positions are set to zero after the softmax, without renormalisation, in the chosen layers, during prefill and generation.',
    meta: {
      ...runMeta(agg, run),
      'p_drop (mean ± std)': `${agg.p_drop.mean} ± ${agg.p_drop.std}`,
      ...(agg.vqa ? { 'VQA accuracy base / ablated': `${agg.vqa.accuracy_base} / ${agg.vqa.accuracy_ablated} (n = ${agg.vqa.n})` } : {}),
      phaselens_version: VERSION,
      ...agg.options,
    },
    figures: [figure],
    table: { columns: ['layer', 'p_drop (mean)', 'std', 'n'], rows: [[opts.layers, agg.p_drop.mean, agg.p_drop.std, agg.p_drop.n], ...agg.per_layer.map((p) => [p.layer, p.p_drop.mean, p.p_drop.std, p.p_drop.n])] },
  });
}
