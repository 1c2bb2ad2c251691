/**
 * Non-finite check of a forward: every residual-stream hook point (each tower's
 * `resid_post`, `vision.post_layernorm`, `qformer.query_output`, `projector.out`,
 * `lm.embed`, `lm.ln_final.normalized`) gets a GPU count of its NaN / ±Inf elements
 * (src/ops/nonfinite.ts); one [points] u32 array is read back at the end. The result names
 * the first point, in forward order, where a non-finite value appeared.
 */
import type { Gpu } from '../gpu/context.ts';
import type { HookFn, HookPoints, NameFilter } from '../hooks/hooks.ts';
import { countNonFinite, nonFiniteCounts } from '../ops/nonfinite.ts';

const RESIDUAL = /(\.resid_post|^vision\.post_layernorm|^qformer\.query_output|^projector\.out|^lm\.embed|^lm\.ln_final\.normalized)$/;

export function finiteProbe(gpu: Gpu, hooks: HookPoints) {
  const names = [...hooks.declared.keys()].filter((n) => RESIDUAL.test(n));
  const slot = new Map(names.map((n, i) => [n, i]));
  const counts = nonFiniteCounts(gpu, names.length);
  const seen: string[] = []; // forward order
  const hook: HookFn = (t, name) => {
    if (!seen.includes(name)) seen.push(name);
    countNonFinite(gpu, t, counts, slot.get(name)!);
  };
  const probe: [NameFilter, HookFn][] = [[names, hook]];

  /** The first hook point with non-finite values and how many, or null when all were finite. */
  async function result(): Promise<{ at: string; count: number } | null> {
    const c = (await gpu.read(counts)) as Uint32Array;
    gpu.release(counts);
    const at = seen.find((n) => c[slot.get(n)!] > 0);
    return at === undefined ? null : { at, count: c[slot.get(at)!] };
  }
  return { hooks: probe, result };
}
