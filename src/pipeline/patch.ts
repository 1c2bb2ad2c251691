/**
 * `phaselens patch` as a library call: one source/target image pair through the patching
 * or steering sweep (src/interventions/patch.ts), written to OUT/patch.json (README,
 * "patch") with a figure of the logit difference per layer and the report.
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
import { writeInterventionReport } from './outputs.ts';
import { writeFileAtomicSync } from './outputs.ts';
import { VERSION } from '../version.ts';
import { groupPositions, itemPrompt, parseAnswer, promptOptions } from './items.ts';

export interface PatchRun {
  out: string;
  source?: string;
  target: string;
  prompt: PromptSpec;
  padToSquare: boolean;
  token: string;
  /** Two comma-separated answers, e.g. "cat,dog". */
  answers: string;
  firstToken: boolean;
  layers: string;
  fromLayerOn: boolean;
  /** Steering instead of patching: the vector and its scale. */
  add?: { vector: Float32Array; scale: number; file: string };
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
  parseLayers(o.layers, m.lm.num_hidden_layers);
  parseAnswerPair(m, o.answers, o.firstToken);
  if (o.add && o.add.vector.length !== m.lm.hidden_size) throw new UserError(`${o.add.file}: the vector has ${o.add.vector.length} values; the residual stream has ${m.lm.hidden_size}`);
  return { target, source };
}

/** The sweep over the inputs `checkPatch` prepared. */
export async function patch(gpu: Gpu, m: Vlm, o: PatchRun, { target, source }: PatchInputs): Promise<{ file: string; report: string }> {
  const group = groupPositions(o.token, target);
  const layers = parseLayers(o.layers, m.lm.num_hidden_layers);
  const answers = parseAnswerPair(m, o.answers, o.firstToken);
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
      layers: o.layers,
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
