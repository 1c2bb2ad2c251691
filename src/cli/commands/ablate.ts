/** `phaselens ablate`: single-token (or group) attention ablation over a data set (README, "ablate"). */
import type { Command } from 'commander';
import { selectItems } from '../../pipeline/analyze.ts';
import { DATA_SPEC_HELP } from '../../data/index.ts';
import { UserError } from '../../errors.ts';
import { GROUP_HELP } from '../../interventions/groups.ts';
import { ablate, checkAblate } from '../../pipeline/ablate.ts';
import { addGpuOptions, type GpuCliOptions } from '../gpu-session.ts';
import { addModelOptions, promptSpec, reportRun, withModel, type PromptOptions } from '../model-run.ts';
import { addShardOptions, int, shardOf } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';

interface Options extends GpuCliOptions, PromptOptions {
  model: string;
  data: string;
  out: string;
  token: string;
  layers: string;
  heads?: string;
  sweepLayers: boolean;
  maxNewTokens: string;
  answer?: string;
  firstToken: boolean;
  limit?: string;
  seed: string;
  dtype?: string;
  shard?: string;
  shards?: string;
  padToSquare: boolean;
}

function parseHeads(v: string | undefined): number[] | null {
  if (v === undefined || v === 'all') return null;
  return v.split(',').map((h) => {
    if (!/^\s*\d+\s*$/.test(h)) throw new UserError(`--heads ${v}: "${h}" is not a head index (or "all")`);
    return Number(h);
  });
}

export function register(program: Command): void {
  addGpuOptions(
    addShardOptions(addModelOptions(program.command('ablate').description('zero the attention to chosen key positions after the softmax (arXiv 2412.06646): answers, answer probability, VQA accuracy'))
      .requiredOption('--data <spec>', DATA_SPEC_HELP)
      .requiredOption('--out <dir>', 'output folder (re-running skips finished items)')
      .requiredOption('--token <group>', `the ablated key positions, e.g. @575 or image; groups: ${GROUP_HELP}`)
      .option('--layers <spec>', 'decoder layers: all, 0-31 or 3,5,9', 'all')
      .option('--heads <list>', 'query heads (default all); with grouped-query attention whole groups')
      .option('--sweep-layers', 'also ablate each of --layers on its own and report per layer', false)
      .option('--max-new-tokens <n>', 'tokens generated for the answers', '8')
      .option('--answer <text|id:N>', 'the answer token: a word (digits too: 2 is the text "2") or a token id as id:N (default: the greedy first token of the un-intervened run)')
      .option('--first-token', 'use the first token of a several-token --answer', false)
      .option('--limit <n>', 'a reproducible random sample of n items')
      .option('--seed <s>', 'seed of the sample and, with each item\'s id, of its random-image token', '0'),
  )).action(async (o: Options) => {
    checkOutputFolder('--out', o.out);
    const selection = selectItems({ data: o.data, limit: int('--limit', o.limit, 1), seed: int('--seed', o.seed, 0), shard: shardOf(o) });
    const run = {
      out: o.out,
      data: o.data,
      prompt: promptSpec(o),
      padToSquare: o.padToSquare,
      token: o.token,
      layers: o.layers,
      heads: parseHeads(o.heads),
      sweep: o.sweepLayers,
      maxNewTokens: int('--max-new-tokens', o.maxNewTokens, 1)!,
      answer: o.answer,
      firstToken: o.firstToken,
      seed: int('--seed', o.seed, 0)!,
    };
    await withModel(o, (f) => checkAblate(f, run, selection.items[0]), async (gpu, m) => {
      const r = await ablate(gpu, m, selection.items, run);
      reportRun(r.summary, o.out, r.report);
    });
  });
}
