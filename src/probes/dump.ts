/**
 * The `phaselens dump` contract: every activation an outside tool needs to check a run,
 * by the names below (F32, ids I32, batch dimension dropped), in one safetensors file,
 * all from one forward pass (README, "dump"). Common to every family:
 *   input_ids [seq]                    the LM ids after the image is placed
 *   pixel_values [3, H, W]             as fed to the vision tower
 *   hidden_states.{l} [seq, d_lm]      l = 0..L (0 = input embeddings; L = after the final norm)
 *   residual_final [seq, d_lm]         output of the last decoder layer before the final norm
 *   logits [seq, vocab]
 * plus the family's tower activations (`Vlm.dumpPoints`): LLaVA's vision_hidden_states.*
 * and image_features; InstructBLIP's qformer_input_ids, vision_hidden_states.*,
 * vision_last_hidden_state, qformer_hidden_states.*, query_output and image_features.
 */
import type { Gpu } from '../gpu/context.ts';
import { hiddenStateHook, prenormHook } from '../hooks/hidden-states.ts';
import type { Vlm, VlmInput } from '../models/vlm.ts';
import { runWithCache } from './cache.ts';

export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

export async function dumpActivations(gpu: Gpu, m: Vlm, x: VlmInput): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  out.set('input_ids', { data: Int32Array.from(x.ids), shape: [x.ids.length] });
  if (x.qformerIds) out.set('qformer_input_ids', { data: Int32Array.from(x.qformerIds), shape: [x.qformerIds.length] });
  if (x.pixels) out.set('pixel_values', { data: x.pixels.data, shape: [...x.pixels.shape] });
  const L = m.lm.num_hidden_layers;
  const points: (readonly [string, string])[] = [
    ...(x.pixels ? m.dumpPoints : []),
    ...Array.from({ length: L }, (_, l): [string, string] => [`hidden_states.${l}`, hiddenStateHook(l, L)]),
    ['residual_final', prenormHook(L)],
  ];
  const { result: hidden, cache } = await runWithCache(gpu, m.hooks, [...new Set(points.map(([, h]) => h))], async () => m.forward(gpu, x));
  for (const [name, hook] of points) {
    const t = cache.get(hook)!;
    out.set(name, { data: await gpu.readF32(t), shape: [...t.shape] });
  }
  gpu.release(...cache.values());
  const seq = x.ids.length;
  const vocab = m.lm.vocab_size;
  const logits = new Float32Array(seq * vocab);
  for (const p of m.languageModel.logits(gpu, hidden)) {
    const part = await gpu.readF32(p.tensor);
    const w = p.tensor.shape[1];
    for (let s = 0; s < seq; s++) logits.set(part.subarray(s * w, (s + 1) * w), s * vocab + p.colStart);
    gpu.release(p.tensor);
  }
  out.set(`hidden_states.${L}`, { data: await gpu.readF32(hidden), shape: [...hidden.shape] });
  gpu.release(hidden);
  out.set('logits', { data: logits, shape: [seq, vocab] });
  return out;
}
