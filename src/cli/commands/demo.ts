/**
 * `phaselens demo`: the embedded default run. Builds the tiny LLaVA checkpoint from its
 * fixed seed (random weights, real LLaVA tokenizer and processor files), then answers a
 * question about a COCO image (the two cats, val2017 39769) with greedy decoding, and
 * prints the per-kernel profile of the whole run.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadLlava } from '../../models/load.ts';
import { generate, loadPixels, promptIds } from '../../models/run.ts';
import { makeTiny } from '../../../weights-tools/make-tiny.ts';
import { finishProfile, openGpu } from '../gpu-session.ts';

const IMAGE = fileURLToPath(new URL('../../../test/fixtures/images/000000039769.png', import.meta.url));
const SEED = 0;

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the embedded default: a tiny LLaVA checkpoint on a COCO image, with the kernel profile')
    .option('--profile [trace]', 'Chrome trace path', 'phaselens-trace.json')
    .option('--max-new-tokens <n>', 'tokens to generate', '8')
    .action(async (o: { profile: string; maxNewTokens: string }) => {
      const dir = join(tmpdir(), 'phaselens-demo', `llava-tiny-seed${SEED}`);
      if (!existsSync(join(dir, 'config.json'))) {
        console.error(`phaselens: writing the tiny LLaVA checkpoint (seed ${SEED}) to ${dir}`);
        await makeTiny({ arch: 'llava', out: dir, seed: SEED, dtype: 'f16' });
      }
      const gpu = await openGpu({ profile: o.profile });
      const m = await loadLlava(gpu, dir);
      const pixels = loadPixels(m, IMAGE);
      const question = 'What is shown in this image?';
      const x = m.model.expand(promptIds(m, { prompt: question, chat: true }, true), true);
      const g = await generate(gpu, m, x, pixels, Number(o.maxNewTokens));
      console.log(`model   ${dir} (random weights: the answer is noise; the pipeline is real)`);
      console.log(`image   ${IMAGE}`);
      console.log(`prompt  USER: <image>\\n${question} ASSISTANT:  (${x.ids.length} tokens, image at [${x.image[0]}, ${x.image[1]}))`);
      console.log(`answer  ${JSON.stringify(m.tokenizer.decode(g.tokens))} ids ${g.tokens.join(',')}`);
      console.log(`prefill ${(g.prefillMs / 1000).toFixed(2)} s, decode ${((Math.max(1, g.tokens.length - 1) * 1000) / g.decodeMs).toFixed(1)} tokens/s`);
      await finishProfile(gpu, o);
    });
}
