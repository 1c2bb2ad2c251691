/**
 * `phaselens demo`: `analyze` on the embedded default. The tiny checkpoint (LLaVA by
 * default, `--arch instructblip` for the other family) is built from its fixed seed on
 * first use (random weights, the real tokenizer and processor files; deterministic, so it
 * is the same checkpoint on every machine) and the data set is the six COCO val2017
 * images with their captions shipped in test/fixtures/coco_mini (attribution in
 * test/fixtures/PROVENANCE.md). Prints where the report is, and the per-kernel profile.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { analyze } from '../../pipeline/analyze.ts';
import { nodeDirectory } from '../../io/source-node.ts';
import { openModel } from '../../models/registry.ts';
import { makeTiny, type TinyArch } from '../../../weights-tools/make-tiny.ts';
import { finishProfile, openGpu } from '../gpu-session.ts';
import { DEFAULT_PROMPT } from './analyze.ts';

const COCO = fileURLToPath(new URL('../../../test/fixtures/coco_mini/', import.meta.url));
const SEED = 0;

export function register(program: Command): void {
  program
    .command('demo')
    .description('run analyze on the embedded default (tiny checkpoint, six COCO images) and print the kernel profile')
    .addOption(new Option('--arch <family>', 'which tiny model').choices(['llava', 'instructblip']).default('llava'))
    .option('--out <dir>', 'output folder (default phaselens-demo, or phaselens-demo-instructblip)')
    .option('--profile [trace]', 'Chrome trace path', 'phaselens-trace.json')
    .action(async (o: { arch: TinyArch; out?: string; profile: string }) => {
      const out = o.out ?? (o.arch === 'llava' ? 'phaselens-demo' : `phaselens-demo-${o.arch}`);
      const dir = join(tmpdir(), 'phaselens-demo', `${o.arch}-tiny-seed${SEED}`);
      if (!existsSync(join(dir, 'config.json'))) {
        console.error(`phaselens: writing the tiny ${o.arch} checkpoint (seed ${SEED}) to ${dir}`);
        await makeTiny({ arch: o.arch, out: dir, seed: SEED, dtype: 'f16' });
      }
      const gpu = await openGpu({ profile: o.profile });
      const files = await openModel(nodeDirectory(dir));
      const m = await files.load(gpu);
      const prompt = { prompt: m.promptFor(DEFAULT_PROMPT, o.arch === 'llava'), chat: o.arch === 'llava' };
      const x = m.prepare(prompt, { width: 8, height: 8, data: new Uint8Array(192) });
      const data = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;
      const t0 = performance.now();
      const r = await analyze(gpu, m, { data, out, prompt, dropBos: false, topk: 5, smooth: 1, padToSquare: false });
      console.log(`model   ${dir} (tiny ${o.arch}, random weights: the curves show the pipeline, not a trained model)`);
      const [s, e] = x.groups.image;
      console.log(`data    ${r.items.length} COCO val2017 images with captions; prompt ${JSON.stringify(`${m.decode(x.ids.slice(0, s))}<${e - s} visual tokens>${m.decode(x.ids.slice(e))}`)}`);
      console.log(`visual  ${m.visualTokens}`);
      console.log(`result  ${r.summary.done} analysed, ${r.summary.skipped} already done, ${r.summary.failed} failed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      console.log(`report  ${r.report}`);
      await finishProfile(gpu, o);
    });
}
