/**
 * `phaselens generate`: greedy answer to a prompt about an image, with tokens/s of the prefill
 * and the decode, timed after an untimed warm-up pass so pipeline compilation is not in them.
 */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { generateTimed } from '../../models/generate.ts';
import { finishProfile } from '../gpu-session.ts';
import { addModelRunOptions, prepareModelRun, type ModelRunOptions } from '../model-run.ts';

interface Options extends ModelRunOptions {
  maxNewTokens: string;
}

export function register(program: Command): void {
  addModelRunOptions(program.command('generate').description('greedy generation with a KV cache on the GPU; prints the answer and tokens/s (after an untimed warm-up pass that compiles the pipelines)'))
    .option('--max-new-tokens <n>', 'tokens to generate', '32')
    .action(async (o: Options) => {
      const maxNew = Number(o.maxNewTokens);
      if (!Number.isInteger(maxNew) || maxNew < 1) throw new UserError(`--max-new-tokens must be a positive integer, got ${o.maxNewTokens}`);
      const { gpu, m, x } = await prepareModelRun(o, maxNew);
      const g = await generateTimed(gpu, m, x, maxNew);
      console.log(m.decode(g.tokens));
      const decoded = Math.max(0, g.tokens.length - 1);
      console.error(
        `prefill: ${x.ids.length} tokens in ${(g.prefillMs / 1000).toFixed(2)} s (${((x.ids.length * 1000) / g.prefillMs).toFixed(1)} tokens/s); ` +
          `decode: ${decoded} tokens in ${(g.decodeMs / 1000).toFixed(2)} s (${decoded ? ((decoded * 1000) / g.decodeMs).toFixed(1) : '-'} tokens/s); ` +
          `timed after an untimed warm-up pass (prefill + 1 decode step) that compiled the pipelines, ${g.compiled.prefill + g.compiled.decode} created while timed; ids ${g.tokens.join(',')}`,
      );
      await finishProfile(gpu, o);
    });
}
