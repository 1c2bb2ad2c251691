/** `phaselens merge`: one aggregate, figures and report from shard outputs (README, "Clusters"). */
import type { Command } from 'commander';
import { merge } from '../../pipeline/merge.ts';
import { checkOutputFolder } from '../output-paths.ts';

export function register(program: Command): void {
  program
    .command('merge')
    .description('aggregate, figures and report from the output folders of several shards (analyze, knockout, ablate or gate), refusing runs that differ')
    .argument('<dirs...>', 'output folders of the shards (or one folder they all wrote into)')
    .requiredOption('--out <dir>', 'folder for the merged results, aggregate and report (may be one of the inputs)')
    .action((dirs: string[], o: { out: string }) => {
      checkOutputFolder('--out', o.out);
      const r = merge(dirs, o.out);
      console.log(`merged ${r.items} ${r.kind} results from ${dirs.length} folder(s)`);
      console.log(`report: ${r.report}`);
    });
}
