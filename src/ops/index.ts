/**
 * Every op the models record, one import away. Each op lives in its own file next to its
 * kernel (shaders/<name>.wgsl); this list is append-only.
 */
export { linear, type Activation, type LinearOptions } from './linear.ts';
export { layerNorm, type NormOptions } from './layernorm.ts';
export { rmsNorm } from './rmsnorm.ts';
export { rope, ropeTable, ropeCosSin, ropeInvFreq, type RopeTable, type RopeOptions } from './rope.ts';
export {
  elementwise, gelu, quickGelu, silu, scale, siluMul, add, mul,
  type UnaryOp, type BinaryOp, type ElementwiseOptions,
} from './elementwise.ts';
export { embedding, embeddingFromIds, tableShape, type EmbeddingPart, type TablePart } from './embedding.ts';
export { im2col, patchEmbed, type PatchEmbedOptions } from './patch-embed.ts';
export { f16ToF32, bf16ToF32, uploadBf16 } from './convert.ts';
export { view } from './common.ts';
export {
  contextualization, contextSets, contextResult, contextScalars,
  type ContextSets, type ContextWidth, type ContextScalars,
} from './contextualization.ts';
export { normAttention, headGram, type NormAttentionOptions, type NormAttentionResult } from './norm-attention.ts';
export {
  attention, attentionRow, pickVariant as attentionVariant, visiblePairs, MAX_HEAD_DIM,
  type AttentionOptions, type AttentionRowOptions, type AttentionScoreOptions, type AttentionVariant,
} from './attention.ts';
export { conv2d, unfold, convOut, type Conv2dOptions, type Padding, type UnfoldOptions } from './conv2d.ts';
export { groupNorm, type GroupNormOptions } from './group-norm.ts';
export { codebookArgmin } from './codebook-argmin.ts';
export { softmax, type SoftmaxOptions } from './softmax.ts';
