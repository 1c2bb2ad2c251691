// The operands of y[M, N] = x[M, K] · W[N, K]ᵀ, shared by the matmul kernels (matmul.wgsl,
// matmul_sgmat.wgsl): the params uniform, x (binding 1) and W ($W_BINDING = 2, f32 or packed
// f16), and vec4 loaders
//   x4(row, k4), w4(col, k4)   x[row, 4·k4 .. 4·k4 + 3], W[col, ..] (row < M, col < N)
// With ONE_PRODUCT the operands are f16-rounded as they are loaded (f16 weights are exact
// already). K % 4 != 0 (VEC4 off): scalar loads, zero past K.
// GLU_X: x is LLaMA's MLP activation act_fn(gate) · up, formed as it is loaded from the gate
// (binding 1) and up (binding 6) projections — down_proj without the silu_mul pass between
// (decoding, where each x element is loaded a few times only). silu is the elementwise
// kernel's, so the product is the same f32 value silu_mul writes.
#if ONE_PRODUCT
#include "lib/f16_round.wgsl"
#endif
#include "lib/weights.wgsl"
#if GLU_X
#include "lib/activations.wgsl"
#endif

struct Params {
  M: u32,      // rows of x and y (tokens)
  N: u32,      // out features
  K: u32,      // in features
  k4_begin: u32,  // this pass sums k in [4·k4_begin, 4·k4_end) (vec4 steps; K-split passes)
  k4_end: u32,
  flags: u32,  // bit 0: add to y (not the first pass); bit 1: apply the epilogue (last pass)
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#if GLU_X
@group(0) @binding(6) var<storage, read> x_up: array<vec4<f32>>;
#endif
fn x_vec4(i: u32) -> vec4<f32> {
#if GLU_X
  let g = x[i];
  return vec4<f32>(silu(g.x), silu(g.y), silu(g.z), silu(g.w)) * x_up[i];
#else
  return x[i];
#endif
}
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if GLU_X
@group(0) @binding(6) var<storage, read> x_up: array<f32>;
#endif
fn x_at(i: u32) -> f32 {
#if GLU_X
  return silu(x[i]) * x_up[i];
#else
  return x[i];
#endif
}
#endif

fn xin(v: vec4<f32>) -> vec4<f32> {
#if ONE_PRODUCT
  return h4(v);
#else
  return v;
#endif
}
fn win(v: vec4<f32>) -> vec4<f32> {
#if W_F16
  return v;
#else
#if ONE_PRODUCT
  return h4(v);
#else
  return v;
#endif
#endif
}

#if VEC4
fn x4(row: u32, k4: u32) -> vec4<f32> {
  return xin(x_vec4(row * (p.K >> 2u) + k4));
}
fn w4(col: u32, k4: u32) -> vec4<f32> {
  return win(w_vec4(col * p.K + 4u * k4));
}
#else
fn x4(row: u32, k4: u32) -> vec4<f32> {
  let k = 4u * k4;
  let i = row * p.K + k;
  let last = row * p.K + p.K - 1u;
  return xin(vec4<f32>(x_at(i), select(0.0, x_at(min(i + 1u, last)), k + 1u < p.K),
                       select(0.0, x_at(min(i + 2u, last)), k + 2u < p.K), select(0.0, x_at(min(i + 3u, last)), k + 3u < p.K)));
}
fn w4(col: u32, k4: u32) -> vec4<f32> {
  let k = 4u * k4;
  let i = col * p.K + k;
  let last = col * p.K + p.K - 1u;
  return win(vec4<f32>(w_at(i), select(0.0, w_at(min(i + 1u, last)), k + 1u < p.K),
                       select(0.0, w_at(min(i + 2u, last)), k + 2u < p.K), select(0.0, w_at(min(i + 3u, last)), k + 3u < p.K)));
}
#endif
