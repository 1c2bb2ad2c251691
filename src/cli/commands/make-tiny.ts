/** `phaselens make-tiny`: see weights-tools/make-tiny.ts. */
import type { Command } from 'commander';
import { configureMakeTiny } from '../../../weights-tools/make-tiny.ts';

export function register(program: Command): void {
  configureMakeTiny(program.command('make-tiny'));
}
