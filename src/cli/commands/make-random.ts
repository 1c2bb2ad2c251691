/** `phaselens make-random`: see weights-tools/make-random.ts. */
import type { Command } from 'commander';
import { configureMakeRandom } from '../../../weights-tools/make-random.ts';

export function register(program: Command): void {
  configureMakeRandom(program.command('make-random'));
}
