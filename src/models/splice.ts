/**
 * What both compositions do after their towers, as HF's masked_scatter does: embed the LM
 * ids, overwrite the visual positions with the features, pass the hook `lm.embed`, run
 * the decoder. Returns the final-normed hidden states [S, d].
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { DecoderLm, VlmForwardOptions, VlmInput } from './vlm.ts';

/** `features` [image span, d] (released here), or undefined for a text-only input. */
export function decodeWithFeatures(gpu: Gpu, lm: DecoderLm, hooks: HookPoints, x: VlmInput, features: Tensor | undefined, opts: VlmForwardOptions): Tensor {
  const ids = gpu.upload(Int32Array.from(x.ids), [x.ids.length], 'input_ids');
  const e = lm.embed(gpu, ids);
  if (features) {
    const d = e.shape[1];
    const [s, end] = x.groups.image;
    gpu.copy(features, e, 0, s * d, (end - s) * d);
    gpu.release(features);
  }
  const embeds = hooks.run(actName('embed'), e);
  const hidden = lm.forward(gpu, embeds, { cache: opts.cache, mask: opts.mask });
  gpu.release(ids, embeds);
  return hidden;
}
