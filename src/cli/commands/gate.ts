/** `phaselens gate`: the narrow-gate measures over a data set (README, "gate"). */
import type { Command } from 'commander';
import { selectItems } from '../../pipeline/analyze.ts';
import { DATA_SPEC_HELP } from '../../data/index.ts';
import { UserError } from '../../errors.ts';
import { COS_BINS } from '../../ops/pair-cos-hist.ts';
import { GATE_POSITIONS } from '../../probes/gate.ts';
import { checkGate, gate, OVERLAP_K } from '../../pipeline/gate.ts';
import { addGpuOptions, type GpuCliOptions } from '../gpu-session.ts';
import { addModelOptions, promptSpec, reportRun, withModel, type PromptOptions } from '../model-run.ts';
import { addShardOptions, int, shardOf } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';

interface Options extends GpuCliOptions, PromptOptions {
  model: string;
  data: string;
  out: string;
  positions?: string;
  dropBos: boolean;
  bins: string;
  k?: string;
  limit?: string;
  seed: string;
  dtype?: string;
  shard?: string;
  shards?: string;
  padToSquare: boolean;
}

export function register(program: Command): void {
  addGpuOptions(
    addShardOptions(addModelOptions(program.command('gate').description('the narrow-gate measures (arXiv 2412.06646) per layer: image/text separation (median and quartiles of |cos|) and the text queries\' attention share per image-side position'))
      .requiredOption('--data <spec>', DATA_SPEC_HELP)
      .requiredOption('--out <dir>', 'output folder (re-running skips finished items)')
      .option('--positions <list>', `comma-separated image-side positions to report (default: every one the model has): ${GATE_POSITIONS.join(', ')}`)
      .option('--drop-bos', 'leave BOS out of the separation\'s text set', false)
      .option('--bins <n>', `histogram bins of |cos| on [0, 1] (2..${COS_BINS}; the quantiles' resolution is 1/bins)`, String(COS_BINS))
      .option('--k <n>', `labels: data sets: the neighbourhood size of the overlap (default ${OVERLAP_K}; fewer than the samples)`)
      .option('--limit <n>', 'a reproducible random sample of n items')
      .option('--seed <s>', 'seed of the sample', '0'),
  )).action(async (o: Options) => {
    checkOutputFolder('--out', o.out);
    const bins = int('--bins', o.bins, 2)!;
    if (bins > COS_BINS) throw new UserError(`--bins ${bins}: at most ${COS_BINS} (the histogram lives in 16 KiB of workgroup memory)`);
    const selection = selectItems({ data: o.data, limit: int('--limit', o.limit, 1), seed: int('--seed', o.seed, 0), shard: shardOf(o) });
    const positions = o.positions === undefined ? [] : o.positions.split(',').map((s) => s.trim()).filter(Boolean);
    const run = { out: o.out, data: o.data, prompt: promptSpec(o), padToSquare: o.padToSquare, positions, dropBos: o.dropBos, bins, k: int('--k', o.k, 1) };
    await withModel(o, (f) => checkGate(f, run, selection.items), async (gpu, m) => {
      const r = await gate(gpu, m, selection.items, run);
      reportRun(r.summary, o.out, r.report);
    });
  });
}
