/**
 * The `phaselens dump` contract: every activation an outside tool needs to check a run,
 * by the names below (F32, ids I32), in one safetensors file:
 *   input_ids [seq]                    after image-token expansion
 *   pixel_values [3, H, W]             as fed to the vision tower
 *   vision_hidden_states.{k} [1 + patches, d_v]   k = 0..Lv (0 = after pre_layrnorm)
 *   image_features [n_img, d_lm]       after the projector
 *   hidden_states.{l} [seq, d_lm]      l = 0..L (0 = input embeddings; L = after the final norm)
 *   residual_final [seq, d_lm]         output of the last decoder layer before the final norm
 *   logits [seq, vocab]
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { PixelValues } from '../io/image-processor.ts';
import type { Expanded } from '../models/llava.ts';
import type { LoadedLlava } from '../models/load.ts';
import { prefill } from '../models/run.ts';
import { runWithCache } from './cache.ts';
import { actName } from './names.ts';

export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

export async function dumpActivations(gpu: Gpu, m: LoadedLlava, x: Expanded, pixels: PixelValues | undefined): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  const read = async (name: string, t: Tensor) => {
    out.set(name, { data: await gpu.readF32(t), shape: [...t.shape] });
    gpu.release(t);
  };
  out.set('input_ids', { data: Int32Array.from(x.ids), shape: [x.ids.length] });
  const model = m.model;
  if (pixels) {
    out.set('pixel_values', { data: pixels.data, shape: [...pixels.shape] });
    const Lv = model.cfg.vision_config.num_hidden_layers;
    const vnames = [actName('resid_pre', 0, 'vision'), ...Array.from({ length: Lv }, (_, l) => actName('resid_post', l, 'vision'))];
    const { result, cache } = await runWithCache(gpu, model.visionTower.hooks, vnames, async () =>
      model.visionTower.forward(gpu, gpu.upload(pixels.data, pixels.shape, 'pixel_values'), Lv),
    );
    gpu.release(result);
    for (let k = 0; k <= Lv; k++) await read(`vision_hidden_states.${k}`, cache.get(vnames[k])!);
  }
  const L = model.cfg.text_config.num_hidden_layers;
  const names = ['projector.out', actName('resid_pre', 0), ...Array.from({ length: L }, (_, l) => actName('resid_post', l))];
  const { result: hidden, cache } = await runWithCache(gpu, model.hooks, names, async () => prefill(gpu, model, x, pixels));
  if (pixels) await read('image_features', cache.get('projector.out')!);
  await read('hidden_states.0', cache.get(names[1])!);
  for (let l = 1; l < L; l++) await read(`hidden_states.${l}`, cache.get(actName('resid_post', l - 1))!);
  await read('residual_final', cache.get(actName('resid_post', L - 1))!);
  const seq = x.ids.length;
  const vocab = model.cfg.text_config.vocab_size;
  const logits = new Float32Array(seq * vocab);
  for (const p of model.languageModel.logits(gpu, hidden)) {
    const part = await gpu.readF32(p.tensor);
    const w = p.tensor.shape[1];
    for (let s = 0; s < seq; s++) logits.set(part.subarray(s * w, (s + 1) * w), s * vocab + p.colStart);
    gpu.release(p.tensor);
  }
  await read(`hidden_states.${L}`, hidden);
  out.set('logits', { data: logits, shape: [seq, vocab] });
  return out;
}
