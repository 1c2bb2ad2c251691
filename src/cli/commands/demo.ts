/**
 * `phaselens demo`: `analyze` on the embedded default. The tiny LLaVA checkpoint is built
 * from its fixed seed on first use (random weights, the real LLaVA-1.5 tokenizer and
 * processor files; deterministic, so it is the same checkpoint on every machine) and the
 * data set is the six COCO val2017 images with their captions shipped in
 * test/fixtures/coco_mini (attribution in test/fixtures/PROVENANCE.md). Prints where the
 * report is, and the per-kernel profile of the run.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { analyze } from '../../analysis/analyze.ts';
import { nodeDirectory } from '../../io/source-node.ts';
import { openModel } from '../../models/registry.ts';
import { makeTiny } from '../../../weights-tools/make-tiny.ts';
import { finishProfile, openGpu } from '../gpu-session.ts';
import { DEFAULT_PROMPT } from './analyze.ts';

const COCO = fileURLToPath(new URL('../../../test/fixtures/coco_mini/', import.meta.url));
const SEED = 0;

export function register(program: Command): void {
  program
    .command('demo')
    .description('run analyze on the embedded default (tiny LLaVA checkpoint, six COCO images) and print the kernel profile')
    .option('--out <dir>', 'output folder', 'phaselens-demo')
    .option('--profile [trace]', 'Chrome trace path', 'phaselens-trace.json')
    .action(async (o: { out: string; profile: string }) => {
      const dir = join(tmpdir(), 'phaselens-demo', `llava-tiny-seed${SEED}`);
      if (!existsSync(join(dir, 'config.json'))) {
        console.error(`phaselens: writing the tiny LLaVA checkpoint (seed ${SEED}) to ${dir}`);
        await makeTiny({ arch: 'llava', out: dir, seed: SEED, dtype: 'f16' });
      }
      const gpu = await openGpu({ profile: o.profile });
      const m = await (await openModel(nodeDirectory(dir))).load(gpu);
      const data = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;
      const t0 = performance.now();
      const r = await analyze(gpu, m, { data, out: o.out, prompt: { prompt: DEFAULT_PROMPT, chat: true }, dropBos: false, topk: 5, smooth: 1, padToSquare: false });
      console.log(`model   ${dir} (tiny, random weights: the curves show the pipeline, not a trained model)`);
      console.log(`data    ${r.items.length} COCO val2017 images with captions; prompt "USER: <image>\\n${DEFAULT_PROMPT} ASSISTANT:"`);
      console.log(`result  ${r.summary.done} analysed, ${r.summary.skipped} already done, ${r.summary.failed} failed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      console.log(`report  ${r.report}`);
      await finishProfile(gpu, o);
    });
}
