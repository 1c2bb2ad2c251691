/** `phaselens inspect DIR`: what a checkpoint folder holds, and whether it is usable (exit 2 if not). */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { formatReport } from '../../io/inspect.ts';
import { nodeDirectory } from '../../io/source-node.ts';
import { checkCheckpoint } from '../../io/validate.ts';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('list a checkpoint folder\'s tensors, parameter counts and memory, and check them against config.json')
    .argument('<dir>', 'Hugging Face checkpoint folder (config.json + *.safetensors)')
    .option('--full', 'list every tensor instead of condensing repeated layers', false)
    .action(async (dir: string, o: { full: boolean }) => {
      const report = await checkCheckpoint(nodeDirectory(dir));
      await report.checkpoint.close();
      console.log(formatReport(dir, report, o.full));
      if (report.problems.length) throw new UserError(`${dir} is not usable: ${report.problems.length} problem(s), listed above`);
    });
}
