/** One real WebGPU device per test worker (lavapipe here), plus seeded data and comparisons. */
import { afterAll } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';

let shared: Promise<Gpu> | undefined;

export function getGpu(): Promise<Gpu> {
  shared ??= createNodeGpu();
  return shared;
}

afterAll(async () => {
  // keep the device for the worker's other files; just make sure nothing is pending
  if (shared) await (await shared).sync();
});

export { randn, relErr, rng } from './data.ts';
