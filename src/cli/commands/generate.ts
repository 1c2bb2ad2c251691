/** `phaselens generate`: greedy answer to a prompt about an image, with tokens/s. */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { loadLlava } from '../../models/load.ts';
import { generate, loadPixels, promptIds } from '../../models/run.ts';
import { addProfileOption, finishProfile, loadProgress, openGpu, parseDtype, type ProfileOption } from '../gpu-session.ts';

interface Options extends ProfileOption {
  model: string;
  image?: string;
  prompt?: string;
  inputIds?: string;
  chat: boolean;
  dtype?: string;
  maxNewTokens: string;
  padToSquare: boolean;
}

export function register(program: Command): void {
  addProfileOption(
    program
      .command('generate')
      .description('greedy generation with a KV cache on the GPU; prints the answer and tokens/s')
      .requiredOption('--model <dir>', 'Hugging Face LLaVA checkpoint folder')
      .option('--image <file>', 'PNG or JPEG')
      .option('--prompt <text>', 'prompt; use <image> for the image, or --chat')
      .option('--input-ids <ids>', 'comma-separated token ids instead of --prompt')
      .option('--chat', "wrap the prompt in the checkpoint's chat template", false)
      .option('--dtype <dtype>', 'weights on the GPU: f32 or f16 (default: as stored in the checkpoint)')
      .option('--max-new-tokens <n>', 'tokens to generate', '32')
      .option('--pad-to-square', "LLaVA-1.5's original preprocessing: pad to a square with the mean colour instead of center-cropping", false),
  ).action(async (o: Options) => {
    const maxNew = Number(o.maxNewTokens);
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new UserError(`--max-new-tokens must be a positive integer, got ${o.maxNewTokens}`);
    const gpu = await openGpu(o);
    const m = await loadLlava(gpu, o.model, { dtype: parseDtype(o.dtype), onProgress: loadProgress('loading weights') });
    const pixels = o.image ? loadPixels(m, o.image, { padToSquare: o.padToSquare }) : undefined;
    const x = m.model.expand(promptIds(m, o, !!pixels), !!pixels);
    const g = await generate(gpu, m, x, pixels, maxNew);
    console.log(m.tokenizer.decode(g.tokens, { skipSpecialTokens: true }).trim());
    const decoded = Math.max(0, g.tokens.length - 1);
    console.error(
      `prefill: ${x.ids.length} tokens in ${(g.prefillMs / 1000).toFixed(2)} s (${((x.ids.length * 1000) / g.prefillMs).toFixed(1)} tokens/s); ` +
        `decode: ${decoded} tokens in ${(g.decodeMs / 1000).toFixed(2)} s (${decoded ? ((decoded * 1000) / g.decodeMs).toFixed(1) : '-'} tokens/s); ids ${g.tokens.join(',')}`,
    );
    await finishProfile(gpu, o);
  });
}
