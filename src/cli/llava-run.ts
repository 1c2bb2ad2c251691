/**
 * What `dump` and `generate` share: the model and input options, and their preparation in
 * the order that fails fast — the checkpoint is validated, the prompt tokenised and the
 * image decoded before a single weight is uploaded, so a typo costs seconds, not a 14 GB load.
 */
import type { Command } from 'commander';
import type { Gpu } from '../gpu/context.ts';
import { UserError } from '../errors.ts';
import type { PixelValues } from '../io/image-processor.ts';
import { expandImageTokens, type Expanded } from '../models/llava.ts';
import { loadLlava, openLlava, type LoadedLlava } from '../models/load.ts';
import { loadPixels, promptIds } from '../models/run.ts';
import { addProfileOption, loadProgress, openGpu, parseDtype, type ProfileOption } from './gpu-session.ts';

export interface LlavaRunOptions extends ProfileOption {
  model: string;
  image?: string;
  prompt?: string;
  inputIds?: string;
  chat: boolean;
  dtype?: string;
  padToSquare: boolean;
}

export function addLlavaRunOptions(cmd: Command): Command {
  return addProfileOption(
    cmd
      .requiredOption('--model <dir>', 'Hugging Face LLaVA checkpoint folder')
      .option('--image <file>', 'PNG or JPEG')
      .option('--prompt <text>', 'prompt; use <image> for the image, or --chat')
      .option('--input-ids <ids>', 'comma-separated token ids instead of --prompt')
      .option('--chat', "wrap the prompt in the checkpoint's chat template", false)
      .option('--dtype <dtype>', 'weights on the GPU: f32 or f16 (default: as stored in the checkpoint)')
      .option('--pad-to-square', "LLaVA-1.5's original preprocessing: pad to a square with the mean colour instead of center-cropping", false),
  );
}

export interface LlavaRun {
  gpu: Gpu;
  m: LoadedLlava;
  pixels?: PixelValues;
  x: Expanded;
}

/** `newTokens`: how many tokens the run will append (generation), checked against the context too. */
export async function prepareLlavaRun(o: LlavaRunOptions, newTokens = 0): Promise<LlavaRun> {
  const dtype = parseDtype(o.dtype);
  const files = await openLlava(o.model);
  try {
    const pixels = o.image ? loadPixels(files, o.image, { padToSquare: o.padToSquare }) : undefined;
    const x = expandImageTokens(files.config, promptIds(files, o, !!pixels), !!pixels);
    const max = files.config.text_config.max_position_embeddings;
    if (x.ids.length + newTokens > max) throw new UserError(`${x.ids.length} prompt tokens + ${newTokens} new tokens exceed max_position_embeddings = ${max}`);
    const gpu = await openGpu(o);
    const m = await loadLlava(gpu, files, { dtype, onProgress: loadProgress('loading weights') });
    return { gpu, m, pixels, x };
  } catch (e) {
    await files.report.checkpoint.close();
    throw e;
  }
}
