/**
 * runWithCache: keep copies of named activations during a forward (TransformerLens'
 * run_with_cache). The copy is recorded inside the hook, so the model may free its own
 * tensor afterwards; subscriptions are removed when the run ends.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints, NameFilter } from '../hooks/hooks.ts';

export async function runWithCache<T>(gpu: Gpu, hooks: HookPoints, names: NameFilter, body: () => Promise<T>): Promise<{ result: T; cache: Map<string, Tensor> }> {
  const cache = new Map<string, Tensor>();
  const result = await hooks.withHooks(
    [
      [
        names,
        (t, name) => {
          const c = gpu.tensor(t.shape, t.dtype, `cache:${name}`);
          gpu.copy(t, c);
          cache.set(name, c);
        },
      ],
    ],
    body,
  );
  return { result, cache };
}
