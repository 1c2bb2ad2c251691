/**
 * Patch embedding — HF `CLIPVisionEmbeddings.patch_embedding` / `BlipVisionEmbeddings`
 * (Conv2d(C, D, kernel = stride = P)) followed by `.flatten(2).transpose(1, 2)`:
 *   pixels [C, H, W] (or [1, C, H, W]) f32, weight [D, C, P, P] f32|f16, bias [D] optional
 *   → [num_patches, D] f32, patches in row-major order (row of patches, then column)
 * as im2col (shaders/im2col.wgsl, src/ops/conv2d.ts's `unfold`) + `linear` with the weight viewed as [D, C·P·P].
 * CLIP's conv has no bias; EVA's (InstructBLIP) has one.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { view } from './common.ts';
import { unfold } from './conv2d.ts';
import { linear } from './linear.ts';

/** pixels [C, H, W] → patches [⌊H/P⌋·⌊W/P⌋, C·P·P] in Conv2d weight order (kernel = stride = P, no padding). */
export function im2col(gpu: Gpu, pixels: Tensor, P: number, opts: { name?: string } = {}): Tensor {
  const shape = pixels.shape.length === 4 && pixels.shape[0] === 1 ? pixels.shape.slice(1) : pixels.shape;
  if (shape.length !== 3) throw new GpuError(`im2col: pixels ${pixels} are not [C, H, W] (or [1, C, H, W])`);
  const [, H, W] = shape;
  if (!Number.isInteger(P) || P < 1 || P > H || P > W) throw new GpuError(`im2col: patch size ${P} does not fit ${pixels}`);
  return unfold(gpu, pixels, { layout: 'chw', kernel: [P, P], stride: P, name: opts.name ?? `${pixels.name}.patches` });
}

export interface PatchEmbedOptions {
  bias?: Tensor;
  /** HF config `patch_size`; checked against the weight's kernel size when given. */
  patchSize?: number;
  name?: string;
}

export function patchEmbed(gpu: Gpu, pixels: Tensor, weight: Tensor, opts: PatchEmbedOptions = {}): Tensor {
  if (weight.shape.length !== 4 || weight.shape[2] !== weight.shape[3]) throw new GpuError(`patchEmbed: weight ${weight} is not [D, C, P, P]`);
  const [D, C, P] = weight.shape;
  if (opts.patchSize !== undefined && opts.patchSize !== P) throw new GpuError(`patchEmbed: patch_size ${opts.patchSize} but weight ${weight} has ${P}×${P} kernels`);
  const channels = pixels.shape[pixels.shape.length - 3];
  if (channels !== C) throw new GpuError(`patchEmbed: pixels ${pixels} have ${channels} channels, weight ${weight} expects ${C}`);
  const patches = im2col(gpu, pixels, P);
  const y = linear(gpu, patches, view(weight, [D, C * P * P]), { bias: opts.bias, name: opts.name ?? `patch_embeds(${pixels.name})` });
  gpu.release(patches); // destroyed after the submit that reads it
  return y;
}
