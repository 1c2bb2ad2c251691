// Weight access for kernels that read f32 or packed-f16 weights ($W_BINDING, read-only).
// f16 weights stay packed two per u32 (low half first, as in safetensors) and are unpacked
// with unpack2x16float, which is core WGSL: no shader-f16 needed.
//   w_at(i)    element i as f32
//   w_vec4(i)  elements i..i+3 (i a multiple of 4; only with VEC4)
#if W_F16
#if VEC4
@group(0) @binding($W_BINDING) var<storage, read> w: array<vec2<u32>>;
fn w_vec4(i: u32) -> vec4<f32> {
  let q = w[i >> 2u];
  return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
}
#else
@group(0) @binding($W_BINDING) var<storage, read> w: array<u32>;
fn w_at(i: u32) -> f32 {
  let pair = unpack2x16float(w[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
}
#endif
#else
#if VEC4
@group(0) @binding($W_BINDING) var<storage, read> w: array<vec4<f32>>;
fn w_vec4(i: u32) -> vec4<f32> {
  return w[i >> 2u];
}
#else
@group(0) @binding($W_BINDING) var<storage, read> w: array<f32>;
fn w_at(i: u32) -> f32 {
  return w[i];
}
#endif
#endif
