/** `phaselens analyze`: the phase-diagram analysis of a data set (see README). */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { analyze, selectItems } from '../../analysis/analyze.ts';
import { DATA_SPEC_HELP } from '../../data/index.ts';
import { loadLlava, openLlava } from '../../models/load.ts';
import { addProfileOption, finishProfile, loadProgress, openGpu, parseDtype, type ProfileOption } from '../gpu-session.ts';

interface Options extends ProfileOption {
  model: string;
  data: string;
  out: string;
  prompt?: string;
  inputIds?: string;
  chat: boolean;
  limit?: string;
  seed: string;
  dtype?: string;
  dropBos: boolean;
  topk: string;
  query?: string;
  smooth: string;
  padToSquare: boolean;
}

export const DEFAULT_PROMPT = 'Describe the image.';

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
}

export function register(program: Command): void {
  addProfileOption(
    program
      .command('analyze')
      .description('contextualization, norm-based attention and LogitLens of every image of a data set; aggregate, figures and an HTML report')
      .requiredOption('--model <dir>', 'Hugging Face LLaVA checkpoint folder')
      .requiredOption('--data <spec>', DATA_SPEC_HELP)
      .requiredOption('--out <dir>', 'output folder (re-running skips finished images)')
      .option('--prompt <text>', `prompt (with <image>, or with --chat); default with --chat: "${DEFAULT_PROMPT}"`)
      .option('--input-ids <ids>', 'comma-separated token ids including the image token, instead of --prompt')
      .option('--chat', "wrap the prompt in the checkpoint's chat template", false)
      .option('--limit <n>', 'analyse a reproducible random sample of n items')
      .option('--seed <s>', 'seed of the sample', '0')
      .option('--dtype <dtype>', 'weights on the GPU: f32 or f16 (default: as stored in the checkpoint)')
      .option('--drop-bos', 'leave BOS out of the text token set', false)
      .option('--topk <k>', 'LogitLens top-k per visual token', '5')
      .option('--query <i>', 'query position for norm-based attention (default: the last token)')
      .option('--smooth <w>', 'moving-average window before the phase segmentation', '1')
      .option('--pad-to-square', "LLaVA-1.5's original preprocessing (pad to a square with the mean colour)", false),
  ).action(async (o: Options) => {
    const limit = int('--limit', o.limit, 1);
    const seed = int('--seed', o.seed, 0);
    const topk = int('--topk', o.topk, 1)!;
    if (topk > 32) throw new UserError('--topk must be at most 32');
    const smooth = int('--smooth', o.smooth, 1)!;
    const query = int('--query', o.query, 0);
    const prompt = o.inputIds !== undefined ? { inputIds: o.inputIds } : { prompt: o.prompt ?? (o.chat ? DEFAULT_PROMPT : `<image>\n${DEFAULT_PROMPT}`), chat: o.chat };
    const dtype = parseDtype(o.dtype);
    const selection = selectItems({ data: o.data, limit, seed });
    const files = await openLlava(o.model);
    const gpu = await openGpu(o);
    const m = await loadLlava(gpu, files, { dtype, onProgress: loadProgress('loading weights') });
    const r = await analyze(gpu, m, { data: o.data, out: o.out, limit, seed, prompt, dropBos: o.dropBos, topk, query, smooth, padToSquare: o.padToSquare }, selection);
    console.log(`${r.summary.done} analysed, ${r.summary.skipped} already done, ${r.summary.failed} failed (see ${o.out}/errors.json)`);
    console.log(`report: ${r.report}`);
    await finishProfile(gpu, o);
  });
}
