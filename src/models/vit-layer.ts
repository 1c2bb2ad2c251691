/**
 * What both vision towers (CLIP, EVA) share: the token sequence [CLS ; patches] plus
 * position embeddings, and the pre-LN transformer block.
 *
 * The block (HF CLIPEncoderLayer and
 * InstructBlipEncoderLayer compute the same thing; they differ in weight names and in how
 * q, k, v are projected — separate in CLIP, one fused `qkv` in EVA, split at load):
 *   h + out_proj(attention(layer_norm1(h)))  →  mid + fc2(act(fc1(layer_norm2(mid))))
 * Hook point: vision.blocks.{l}.resid_mid.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import { attention } from '../ops/attention.ts';
import { view } from '../ops/common.ts';
import { add } from '../ops/elementwise.ts';
import type { LayerNorm } from './layer-norm.ts';
import { activationOf, type Linear } from './linear.ts';

export interface VitLayerWeights {
  heads: number;
  hiddenAct: string;
  layerNorm1: LayerNorm;
  /** q, k, v projections. */
  qkv: readonly [Linear, Linear, Linear];
  outProj: Linear;
  layerNorm2: LayerNorm;
  fc1: Linear;
  fc2: Linear;
}

export function vitLayer(gpu: Gpu, w: VitLayerWeights, h: Tensor, layer: number, hooks: HookPoints): Tensor {
  const [S, d] = h.shape;
  const D = d / w.heads;
  const x = w.layerNorm1.forward(gpu, h);
  const [q, k, v] = w.qkv.map((p) => view(p.forward(gpu, x), [S, w.heads, D]));
  const z = attention(gpu, q, k, v, { causal: false, name: actName('attn.z', layer, 'vision') });
  const mid = hooks.run(actName('resid_mid', layer, 'vision'), w.outProj.forward(gpu, z, { residual: h }));
  const x2 = w.layerNorm2.forward(gpu, mid);
  const a = w.fc1.forward(gpu, x2, { act: activationOf(w.hiddenAct) });
  const out = w.fc2.forward(gpu, a, { residual: mid, name: actName('resid_post', layer, 'vision') });
  gpu.release(x, q, k, v, z, mid, x2, a);
  return out;
}

/** patches [n, d] (released here) → [CLS ; patches] + positions [1 + n, d] (hook-free: the tower names it). */
export function vitEmbeddings(gpu: Gpu, patches: Tensor, classEmbedding: Tensor, positionEmbedding: Tensor): Tensor {
  const [n, d] = patches.shape;
  const tokens = gpu.tensor([n + 1, d], 'f32', 'vision.embed.tokens');
  gpu.copy(classEmbedding, tokens, 0, 0, d);
  gpu.copy(patches, tokens, 0, d, n * d);
  const out = add(gpu, tokens, view(positionEmbedding, [n + 1, d]), { name: 'vision.embed' });
  gpu.release(patches, tokens);
  return out;
}
