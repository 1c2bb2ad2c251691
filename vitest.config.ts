import { defineConfig } from 'vitest/config';

// GPU tests share one lavapipe device per worker; lavapipe already uses every core,
// so running many files in parallel only adds contention.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
