import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import LongestFirst from './test/sequencer.ts';

// GPU tests share one lavapipe device per worker. lavapipe and torch each start one thread
// per core by default; with two workers on two cores that oversubscribes the machine, so
// each worker gets its share of the cores (children it spawns inherit the setting).
const workers = 2;
const threads = String(Math.max(1, Math.floor(availableParallelism() / workers)));

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: workers,
    sequence: { sequencer: LongestFirst },
    env: { LP_NUM_THREADS: threads, OMP_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads },
  },
});
