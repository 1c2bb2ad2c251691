/**
 * phaselens command line. Each subcommand lives in its own file under
 * src/cli/commands/ and exports `register(program)`.
 */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import * as commands from './commands/index.ts';

const program = new Command('phaselens')
  .description('Vision-language model inference on WebGPU, instrumented for interpretability')
  .version(VERSION)
  .option('--verbose', "keep the GPU driver's start-up warnings on stderr (src/cli/phaselens.mjs filters them)")
  .showHelpAfterError();

for (const c of Object.values(commands) as { register(p: Command): void }[]) c.register(program);

try {
  await program.parseAsync(process.argv);
  process.exit(process.exitCode ?? 0);
} catch (e) {
  if (e instanceof UserError) {
    console.error(`phaselens: ${e.message}`);
    process.exit(2);
  }
  throw e;
}
