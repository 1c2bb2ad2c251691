/**
 * Host cost per dispatch: a chain of small elementwise kernels the way a decode step
 * records them (each allocates its output and releases its input), timed on the host from
 * the first record to the end of `sync()`, with the GPU work kept negligible (256 floats).
 * The baseline is the same chain with its outputs made once and reused (no allocation),
 * in the same run. Prints µs per dispatch for both.
 *
 *   node src/cli/run-ts.mjs bench/gpu/dispatch-overhead.ts [--n 2000] [--reps 5]
 */
import { createNodeGpu } from '../../src/gpu/node.ts';
import { elementwise } from '../../src/ops/elementwise.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('--n', 2000);
const REPS = arg('--reps', 5);

const gpu = await createNodeGpu();
const a = gpu.upload(new Float32Array(256).fill(1), [256], 'a');
const fixed = [gpu.tensor([256], 'f32', 'p'), gpu.tensor([256], 'f32', 'q')];

async function chain(alloc: boolean): Promise<number> {
  const t0 = performance.now();
  let x: Tensor = a;
  for (let i = 0; i < N; i++) {
    if (alloc) {
      const y = elementwise(gpu, 'add', x, a);
      if (x !== a) gpu.release(x);
      x = y;
    } else {
      elementwise(gpu, 'add', fixed[i % 2], a, 0, { inPlace: true });
    }
  }
  await gpu.sync();
  if (x !== a) gpu.release(x);
  return ((performance.now() - t0) * 1000) / N;
}

await chain(true); // warm-up: pipelines
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const withAlloc: number[] = [];
const reuse: number[] = [];
for (let r = 0; r < REPS; r++) {
  withAlloc.push(await chain(true));
  reuse.push(await chain(false));
}
console.log(`adapter ${gpu.adapterName}; ${N} dispatches per chain, median of ${REPS}`);
console.log(`host µs per dispatch, allocating outputs (decode-like): ${median(withAlloc).toFixed(1)}`);
console.log(`host µs per dispatch, in place (no allocation):         ${median(reuse).toFixed(1)}`);
console.log(`allocating / in place: ${(median(withAlloc) / median(reuse)).toFixed(2)}`);
gpu.destroy();
