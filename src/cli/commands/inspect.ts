/** `phaselens inspect DIR`: what a checkpoint folder holds, and whether it is usable (exit 2 if not). */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { formatReport } from '../../io/inspect.ts';
import { nodeDirectory } from '../../io/source-node.ts';
import { checkCheckpoint } from '../../models/registry.ts';
import { checkValues } from '../../io/check-values.ts';
import { loadProgress } from '../gpu-session.ts';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('list a checkpoint folder\'s tensors, parameter counts and memory, and check them against config.json')
    .argument('<dir>', 'Hugging Face checkpoint folder (config.json + *.safetensors)')
    .option('--full', 'list every tensor instead of condensing repeated layers', false)
    .option('--check-values', 'also read every weight and report tensors holding NaN or Inf', false)
    .action(async (dir: string, o: { full: boolean; checkValues: boolean }) => {
      const report = await checkCheckpoint(nodeDirectory(dir));
      const values = o.checkValues ? await checkValues(report.checkpoint, loadProgress('checking values')) : null;
      await report.checkpoint.close();
      console.log(formatReport(dir, report, o.full));
      if (values) {
        console.log(`\nvalues     ${values.values} in ${values.tensors} floating-point tensors: ${values.bad.length ? `${values.bad.length} tensor(s) hold NaN or Inf` : 'all finite'}`);
        for (const b of values.bad) console.log(`  ${b.name}: ${b.count} non-finite value(s)`);
      }
      if (report.problems.length) throw new UserError(`${dir} is not usable: ${report.problems.length} problem(s), listed above`);
      if (values?.bad.length) throw new UserError(`${dir}: ${values.bad.length} tensor(s) hold NaN or Inf values, listed above`);
    });
}
