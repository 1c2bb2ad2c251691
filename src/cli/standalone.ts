/**
 * Lets a tool module (weights-tools/*.ts, bench/*.ts) also run as a script:
 *   node src/cli/run-ts.mjs weights-tools/make-tiny.ts --arch llava --out DIR
 * with the same UserError handling as the `phaselens` CLI (message only, exit 2).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';

/** True when the module with this `import.meta.url` is the script being run. */
export function isMain(moduleUrl: string): boolean {
  return !!process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === moduleUrl;
}

export async function runStandalone(command: Command): Promise<void> {
  try {
    await command.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`${command.name()}: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
}
