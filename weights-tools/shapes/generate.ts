/**
 * `shapes-world`: writes a seeded shapes-world sample as COCO captions, VQA and
 * Winoground-style data sets (see datasets.ts for the layout).
 *
 *   node src/cli/run-ts.mjs weights-tools/shapes/generate.ts --seed 7 --scenes 48 --size 48 --out DIR
 *   phaselens analyze --model ORGANISM --data coco:DIR/captions.json:DIR/images --out OUT
 */
import { Command } from 'commander';
import { isMain, runStandalone } from '../../src/cli/standalone.ts';
import { UserError } from '../../src/errors.ts';
import { writeDatasets, type DatasetOptions } from './datasets.ts';
import { checkImageSize } from './render.ts';

const int = (v: string) => parseInt(v, 10);

export function configureGenerate(cmd: Command): Command {
  return cmd
    .description('write shapes-world scenes as COCO / VQA / Winoground data sets')
    .requiredOption('--out <dir>', 'output folder (created)')
    .option('--seed <n>', 'world seed', int, 0)
    .option('--scenes <n>', 'number of scenes', int, 48)
    .option('--pairs <n>', 'Winoground pairs (default scenes / 4)', int)
    .option('--size <px>', 'image side in pixels', int, 48)
    .action(async (o: DatasetOptions) => {
      if (!Number.isInteger(o.scenes) || o.scenes < 1) throw new UserError(`--scenes must be a positive integer, got ${o.scenes}`);
      checkImageSize(o.size);
      const r = await writeDatasets(o);
      console.log(`wrote ${o.out}: ${r.scenes} scenes, ${r.questions} questions, ${r.pairs} Winoground pairs`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configureGenerate(new Command('shapes-world')));
