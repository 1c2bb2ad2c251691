/** `phaselens knockout`: attention knockout sweeps over a data set (README, "knockout"). */
import type { Command } from 'commander';
import { selectItems } from '../../pipeline/analyze.ts';
import { DATA_SPEC_HELP } from '../../data/index.ts';
import { parseBox } from '../../data/vqa.ts';
import { GROUP_HELP } from '../../interventions/groups.ts';
import { expandFlows, GATE_FLOWS, STUDY_FLOWS } from '../../interventions/knockout.ts';
import { UserError } from '../../errors.ts';
import { checkKnockout, DEFAULT_GENERATE, knockout } from '../../pipeline/knockout.ts';
import { addGpuOptions, type GpuCliOptions } from '../gpu-session.ts';
import { addModelOptions, promptSpec, reportRun, withModel, type PromptOptions } from '../model-run.ts';
import { addShardOptions, collect, int, shardOf } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';

interface Options extends GpuCliOptions, PromptOptions {
  model: string;
  data: string;
  out: string;
  flow: string[];
  window?: string;
  layers?: string;
  fromLast: boolean;
  generate?: string;
  answer?: string;
  firstToken: boolean;
  limit?: string;
  seed: string;
  dtype?: string;
  shard?: string;
  shards?: string;
  padToSquare: boolean;
  objectBox?: string;
}

export function register(program: Command): void {
  addGpuOptions(
    addShardOptions(addModelOptions(program.command('knockout').description('attention knockout between token groups: answer-probability change per centre layer (arXiv 2411.18620), or in all / the last layers with the generated answer scored (arXiv 2412.06646)'))
      .requiredOption('--data <spec>', DATA_SPEC_HELP)
      .requiredOption('--out <dir>', 'output folder (re-running skips finished items)')
      .requiredOption('--flow <DST<-SRC>', `a flow to block, repeatable; study (the information-flow study's six: ${STUDY_FLOWS.join(', ')}) or gate (the narrow-gate study's four: ${GATE_FLOWS.join(', ')}); groups: ${GROUP_HELP}`, collect)
      .option('--window <k>', 'layers knocked out around each centre layer (default 9; the window sweep)')
      .option('--layers <all|a-b>', 'instead of the window sweep: one run with the flows knocked out in these layers')
      .option('--from-last', 'instead of the window sweep: runs knocking out layers i..L-1, i = L-1 down to 0', false)
      .option('--generate <n>', `with --layers / --from-last: tokens generated under each knockout and scored (default ${DEFAULT_GENERATE} when the data set has answers, else none)`)
      .option('--answer <text|id:N>', 'the answer token: a word (digits too: 2 is the text "2") or a token id as id:N (default: the greedy first token of the un-intervened run)')
      .option('--first-token', 'use the first token of a several-token --answer', false)
      .option('--object-box <x0,y0,x1,y1>', 'the object, in pixels of the image, for the token groups object and image-object (a data set item\'s "box" takes precedence)')
      .option('--limit <n>', 'a reproducible random sample of n items')
      .option('--seed <s>', 'seed of the sample and, with each item\'s id, of its random-image token', '0'),
  )).action(async (o: Options) => {
    checkOutputFolder('--out', o.out);
    if (o.window !== undefined && (o.layers !== undefined || o.fromLast)) throw new UserError('--window is the window sweep\'s; --layers and --from-last knock out fixed layers');
    const window = int('--window', o.window ?? '9', 1)!;
    const selection = selectItems({ data: o.data, limit: int('--limit', o.limit, 1), seed: int('--seed', o.seed, 0), shard: shardOf(o) });
    const objectBox = o.objectBox === undefined ? undefined : parseBox(o.objectBox, '--object-box');
    const run = { out: o.out, data: o.data, prompt: promptSpec(o), padToSquare: o.padToSquare, flows: expandFlows(o.flow), window, answer: o.answer, firstToken: o.firstToken, objectBox, layers: o.layers, fromLast: o.fromLast, generate: int('--generate', o.generate, 0), seed: int('--seed', o.seed, 0)! };
    await withModel(o, (f) => checkKnockout(f, run, selection.items[0]), async (gpu, m) => {
      const r = await knockout(gpu, m, selection.items, run);
      reportRun(r.summary, o.out, r.report);
    });
  });
}
