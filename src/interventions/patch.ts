/**
 * Activation patching and steering ("The Narrow Gate", arXiv 2412.06646): at the residual
 * stream entering decoder layer l (`lm.blocks.{l}.resid_pre`, HF hidden_states[l]), the
 * rows of a token group are overwritten with the same rows of a run on a source image
 * (patching), or get `scale · vector` added (steering) — at one layer, or at every layer
 * from l on. Reported per layer: the logit difference of two answer tokens at the last
 * position (by default, when patching: the source run's top answer − the target run's, so
 * it rises as the patch steers the target towards the source) and the top answer of the
 * patched run.
 *
 * The source's rows are cached once (one forward); each patched target run writes them
 * into the target's residual in place (a copy into the tensor the model owns, so no
 * tensor changes hands).
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { Vlm, VlmInput } from '../models/vlm.ts';
import { add } from '../ops/elementwise.ts';
import { runWithCache } from '../probes/cache.ts';
import { runLast, type LastOutput } from './answer.ts';

export type PatchEdit = { mode: 'copy'; source: VlmInput } | { mode: 'add'; vector: Float32Array; scale: number };

export interface PatchOptions {
  group: number[];
  edit: PatchEdit;
  /** Layers to report (each its own run). */
  layers: number[];
  /** Patch at every layer from l on instead of at l only. */
  fromLayerOn: boolean;
  /** The two answer ids of the logit difference (default, patching only: the source run's top answer, the target run's). */
  answers?: [number, number];
}

export interface PatchLayer {
  layer: number;
  logit_diff: number;
  top_answer: number;
}

export interface PatchResult {
  answers: [number, number];
  base_target: { logit_diff: number; top_answer: number };
  base_source: { logit_diff: number; top_answer: number } | null;
  per_layer: PatchLayer[];
}

/** Contiguous runs of sorted positions, as [first, count] (one copy per run). */
function runsOf(positions: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const p of positions) {
    const last = out.at(-1);
    if (last && last[0] + last[1] === p) last[1]++;
    else out.push([p, 1]);
  }
  return out;
}

export async function patchSweep(gpu: Gpu, m: Vlm, target: VlmInput, o: PatchOptions): Promise<PatchResult> {
  const lm = m.languageModel;
  const L = lm.cfg.num_hidden_layers;
  const d = lm.cfg.hidden_size;
  let answers = o.answers;
  const summary = (r: LastOutput) => ({ logit_diff: r.logits[answers![0]] - r.logits[answers![1]], top_answer: r.top });
  const names = Array.from({ length: L }, (_, l) => actName('resid_pre', l));
  const runs = runsOf(o.group);

  let source: Map<string, Tensor> | null = null;
  let sourceOut: LastOutput | null = null;
  if (o.edit.mode === 'copy') {
    if (o.edit.source.ids.length !== target.ids.length) throw new UserError(`the source run has ${o.edit.source.ids.length} positions and the target ${target.ids.length}; patching needs the same prompt layout`);
    const { result, cache } = await runWithCache(gpu, m.hooks, names, async () => m.forward(gpu, (o.edit as { source: VlmInput }).source));
    source = cache;
    sourceOut = await runLast(gpu, lm, () => result);
  } else if (o.edit.vector.length !== d) {
    throw new UserError(`the steering vector has ${o.edit.vector.length} values; the residual stream has ${d}`);
  } else if (!answers) {
    throw new UserError('steering with a vector needs the two answers of the logit difference');
  }
  let delta: Tensor | undefined;
  if (o.edit.mode === 'add') {
    const rows = new Float32Array(target.ids.length * d);
    for (const p of o.group) for (let i = 0; i < d; i++) rows[p * d + i] = o.edit.scale * o.edit.vector[i];
    delta = gpu.upload(rows, [target.ids.length, d], 'steering.delta');
  }
  const edit: HookFn = (t, name) => {
    if (!source) {
      const out = add(gpu, t, delta!, { name: t.name });
      gpu.release(t); // the hook owns the tensor it replaces
      return out;
    }
    const from = source.get(name)!;
    for (const [p, n] of runs) gpu.copy(from, t, p * d, p * d, n * d);
  };

  try {
    const targetOut = await runLast(gpu, lm, () => m.forward(gpu, target));
    answers ??= [sourceOut!.top, targetOut.top];
    const baseTarget = summary(targetOut);
    const baseSource = sourceOut && summary(sourceOut);
    const perLayer: PatchLayer[] = [];
    for (const l of o.layers) {
      const at: NameFilter = o.fromLayerOn ? names.slice(l) : [names[l]];
      const r = await m.hooks.withHooks([[at, edit]], async () => runLast(gpu, lm, () => m.forward(gpu, target)));
      perLayer.push({ layer: l, ...summary(r) });
    }
    return { answers, base_target: baseTarget, base_source: baseSource, per_layer: perLayer };
  } finally {
    if (source) gpu.release(...source.values());
    gpu.release(delta);
  }
}
