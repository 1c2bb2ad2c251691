// One export per subcommand; each module exports `register(program: Command)`.
export * as inspect from './inspect.ts';
export * as makeTiny from './make-tiny.ts';
export * as makeRandom from './make-random.ts';
export * as generate from './generate.ts';
export * as dump from './dump.ts';
export * as demo from './demo.ts';
export * as analyze from './analyze.ts';
export * as knockout from './knockout.ts';
export * as ablate from './ablate.ts';
export * as patch from './patch.ts';
export * as merge from './merge.ts';
export * as slurm from './slurm.ts';
export * as gate from './gate.ts';
export * as gateReport from './gate-report.ts';
