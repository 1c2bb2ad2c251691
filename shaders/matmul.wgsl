// y[M, N] = act(x[M, K] · W[N, K]ᵀ + bias[N]) + residual[M, N]
// W in HF Linear layout [out, in], f32 or packed f16; accumulation in f32.
//
// Each invocation keeps a 4×4 block of y in registers and walks K four at a time with
// vec4 loads (VEC4, when K % 4 == 0) or one at a time otherwise. No workgroup memory and
// no barriers: both are slow on CPU adapters (lavapipe), and GPUs get the reuse from caches.
// Rows/columns past M/N are clamped for loads and skipped for stores, so any M, N work.
//
// defines: VEC4, W_F16, BIAS, RESIDUAL, ACT (0 none, 1 gelu, 2 quick_gelu, 3 silu)
#include "lib/activations.wgsl"

struct Params {
  M: u32,  // rows of x and y (tokens)
  N: u32,  // out features
  K: u32,  // in features
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
alias V = vec4<f32>;
fn x_at(i: u32) -> V { return x[i >> 2u]; }
fn w_v(i: u32) -> V { return w_vec4(i); }
fn mac(a: V, b: V) -> f32 { return dot(a, b); }
const STEP = 4u;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
alias V = f32;
fn x_at(i: u32) -> V { return x[i]; }
fn w_v(i: u32) -> V { return w_at(i); }
fn mac(a: V, b: V) -> f32 { return a * b; }
const STEP = 1u;
#endif
#include "lib/weights.wgsl"
#if BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#if RESIDUAL
@group(0) @binding(4) var<storage, read> residual: array<f32>;
#endif
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

fn store(row: u32, col: u32, v: f32) {
  if (row >= p.M || col >= p.N) { return; }
  var o = v;
#if BIAS
  o += bias[col];
#endif
  if ($ACT == 1) { o = gelu(o); }
  if ($ACT == 2) { o = quick_gelu(o); }
  if ($ACT == 3) { o = silu(o); }
  let i = row * p.N + col;
#if RESIDUAL
  o += residual[i];
#endif
  y[i] = o;
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c0 = gid.x * 4u;
  let r0 = gid.y * 4u;
  if (c0 >= p.N || r0 >= p.M) { return; }
  let x0 = min(r0, p.M - 1u) * p.K;
  let x1 = min(r0 + 1u, p.M - 1u) * p.K;
  let x2 = min(r0 + 2u, p.M - 1u) * p.K;
  let x3 = min(r0 + 3u, p.M - 1u) * p.K;
  let w0 = min(c0, p.N - 1u) * p.K;
  let w1 = min(c0 + 1u, p.N - 1u) * p.K;
  let w2 = min(c0 + 2u, p.N - 1u) * p.K;
  let w3 = min(c0 + 3u, p.N - 1u) * p.K;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = 0u; k < p.K; k += STEP) {
    let b0 = w_v(w0 + k);
    let b1 = w_v(w1 + k);
    let b2 = w_v(w2 + k);
    let b3 = w_v(w3 + k);
    var a = x_at(x0 + k);
    a0 += vec4<f32>(mac(a, b0), mac(a, b1), mac(a, b2), mac(a, b3));
    a = x_at(x1 + k);
    a1 += vec4<f32>(mac(a, b0), mac(a, b1), mac(a, b2), mac(a, b3));
    a = x_at(x2 + k);
    a2 += vec4<f32>(mac(a, b0), mac(a, b1), mac(a, b2), mac(a, b3));
    a = x_at(x3 + k);
    a3 += vec4<f32>(mac(a, b0), mac(a, b1), mac(a, b2), mac(a, b3));
  }
  let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) {
      store(r0 + r, c0 + c, acc[r][c]);
    }
  }
}
