// Per-feature parameters of a norm layer (HF `weight` [D] and optional `bias` [D]), each
// f32 or packed f16, read as f32:
//   weight_at(i)   at binding WEIGHT_BINDING; WEIGHT_F16 when packed f16
//   bias_at(i)     at binding BIAS_BINDING when BIAS (BIAS_F16 when packed f16); 0 otherwise
#include "lib/half.wgsl"

#if WEIGHT_F16
@group(0) @binding($WEIGHT_BINDING) var<storage, read> weight: array<u32>;
fn weight_at(i: u32) -> f32 {
  return half_at(weight[i >> 1u], i);
}
#else
@group(0) @binding($WEIGHT_BINDING) var<storage, read> weight: array<f32>;
fn weight_at(i: u32) -> f32 {
  return weight[i];
}
#endif

#if BIAS
#if BIAS_F16
@group(0) @binding($BIAS_BINDING) var<storage, read> bias: array<u32>;
fn bias_at(i: u32) -> f32 {
  return half_at(bias[i >> 1u], i);
}
#else
@group(0) @binding($BIAS_BINDING) var<storage, read> bias: array<f32>;
fn bias_at(i: u32) -> f32 {
  return bias[i];
}
#endif
#else
fn bias_at(i: u32) -> f32 {
  return 0.0;
}
#endif
