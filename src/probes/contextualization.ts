/**
 * Contextualization probe: at every hidden-state index l = 0..L (HF convention) and at the
 * last layer before the final norm, records the GPU reduction of src/ops/contextualization.ts
 * into row l of an [L + 2, 3] result (row L + 1 = prenorm); reads back only that at the end.
 */
import type { Gpu } from '../gpu/context.ts';
import { contextResult, contextScalars, contextSets, contextualization, type ContextScalars } from '../ops/contextualization.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';
import { hiddenStateIndex, prenormHook } from '../hooks/hidden-states.ts';

export interface ContextualizationResult {
  inter: (number | null)[];
  intra_image: (number | null)[];
  intra_text: (number | null)[];
  last_layer_prenorm: ContextScalars;
}

/** image: the visual tokens' positions (analyze's --visual-tokens set); text: every other position kept (BOS or not). */
export function contextualizationProbe(gpu: Gpu, L: number, image: readonly number[], text: readonly number[]) {
  const rowOf = hiddenStateIndex(L);
  rowOf.set(prenormHook(L), L + 1);
  const sets = contextSets(gpu, image, text);
  const out = contextResult(gpu, L + 2);
  const hook: HookFn = (h, name) => {
    contextualization(gpu, h, sets, out, rowOf.get(name)!);
  };
  const hooks: [NameFilter, HookFn][] = [[(name) => rowOf.has(name), hook]];

  async function result(): Promise<ContextualizationResult> {
    const rows = contextScalars((await gpu.read(out)) as Float32Array);
    gpu.release(out, sets.idx);
    const curve = rows.slice(0, L + 1);
    return {
      inter: curve.map((r) => r.inter),
      intra_image: curve.map((r) => r.intra_image),
      intra_text: curve.map((r) => r.intra_text),
      last_layer_prenorm: rows[L + 1],
    };
  }
  return { hooks, result };
}
