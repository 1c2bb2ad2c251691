/** `phaselens analyze`: the phase-diagram analysis of a data set (see README). */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { analyze, selectItems } from '../../pipeline/analyze.ts';
import { checkVisualTokens, DEFAULT_PROMPT, VISUAL_TOKEN_SETS, type VisualTokenSet } from '../../analysis/analyze-image.ts';
import { LENS_SPEC_HELP, resolveLens } from '../../analysis/lens-spec.ts';
import { checkSmoothWindow } from '../../analysis/phases.ts';
import { DATA_SPEC_HELP } from '../../data/index.ts';
import { addGpuOptions, checkProfilePath, finishProfile, loadProgress, openGpu, type GpuCliOptions } from '../gpu-session.ts';
import { addShardOptions, int, shardOf } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';
import { addModelOptions, loadOptions, openChecked, promptSpec, reportRun, type LoadCliOptions, type PromptOptions } from '../model-run.ts';

export { DEFAULT_PROMPT };

interface Options extends GpuCliOptions, PromptOptions, LoadCliOptions {
  model: string;
  data: string;
  out: string;
  limit?: string;
  seed: string;
  shard?: string;
  shards?: string;
  dropBos: boolean;
  visualTokens: string;
  topk: string;
  lensLayers: string;
  lensPositions: string;
  query?: string;
  smooth: string;
  padToSquare: boolean;
}

export function register(program: Command): void {
  addGpuOptions(
    addShardOptions(addModelOptions(
      program
        .command('analyze')
        .description(`contextualization, norm-based attention and LogitLens of every image of a data set; aggregate, figures and an HTML report (default prompt: "${DEFAULT_PROMPT}" in the family's usual form)`),
    )
      .requiredOption('--data <spec>', DATA_SPEC_HELP)
      .requiredOption('--out <dir>', 'output folder (re-running skips finished images)')
      .option('--limit <n>', 'analyse a reproducible random sample of n items')
      .option('--seed <s>', 'seed of the sample', '0')
      .option('--drop-bos', 'leave BOS out of the text token set', false)
      .option('--visual-tokens <set>', `${VISUAL_TOKEN_SETS.join(' | ')}: whether LLaVA-NeXT's image_newline tokens count as visual tokens (patches: left out of the image set, the LogitLens and the image share; on LLaVA-1.5 the same as all; refused where the visual tokens are no patches)`, 'all')
      .option('--topk <k>', 'LogitLens top-k per visual token', '5')
      .option('--lens-layers <spec>', `hidden-state indices 0..L the LogitLens runs on (0 = embeddings, L = after the final norm): ${LENS_SPEC_HELP}; e.g. 0,8,16-32`, 'all')
      .option('--lens-positions <spec>', `visual tokens the LogitLens runs on, counted from the first one (0..575 on LLaVA-1.5, 0..31 on InstructBLIP): ${LENS_SPEC_HELP}; e.g. 0-287 or ::4`, 'all')
      .option('--query <i>', 'query position for norm-based attention (default: the last token)')
      .option('--smooth <w>', 'centred moving-average window before the phase segmentation: odd, 1 = none', '1'),
  )).action(async (o: Options) => {
    checkOutputFolder('--out', o.out);
    checkProfilePath(o);
    const limit = int('--limit', o.limit, 1);
    const seed = int('--seed', o.seed, 0);
    const topk = int('--topk', o.topk, 1)!;
    if (topk > 32) throw new UserError('--topk must be at most 32');
    const smooth = checkSmoothWindow(int('--smooth', o.smooth, 1)!);
    const query = int('--query', o.query, 0);
    const load = loadOptions(o);
    const shard = shardOf(o);
    const selection = selectItems({ data: o.data, limit, seed, shard });
    const { files, checked: prompt } = await openChecked(o.model, (f) => {
      checkVisualTokens(o.visualTokens, f.capabilities);
      const p = promptSpec(o);
      if (p.inputIds === undefined && p.prompt === undefined) p.prompt = f.promptFor(DEFAULT_PROMPT, o.chat);
      // the prompt does not depend on the image: check it once, on a stand-in, before any weight loads
      const x = f.prepare(p, { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(128) });
      if (o.dropBos && x.groups.bos === null) throw new UserError('--drop-bos: this prompt has no BOS token (or, without a tokenizer, it cannot be told which one it is)');
      if (query !== undefined && query >= x.ids.length) throw new UserError(`--query ${query} is outside the sequence (0..${x.ids.length - 1})`);
      resolveLens(o, f.lm.num_hidden_layers, x.groups.image[1] - x.groups.image[0]);
      return p;
    });
    const gpu = await openGpu(o);
    const m = await files.load(gpu, { ...load, onProgress: loadProgress('loading weights') });
    const r = await analyze(gpu, m, { data: o.data, out: o.out, limit, seed, shard, prompt, dropBos: o.dropBos, visualTokens: o.visualTokens as VisualTokenSet, topk, lensLayers: o.lensLayers, lensPositions: o.lensPositions, query, smooth, padToSquare: o.padToSquare }, selection);
    reportRun(r.summary, o.out, r.report, 'analysed');
    await finishProfile(gpu, o);
  });
}
