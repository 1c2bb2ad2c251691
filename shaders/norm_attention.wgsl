// Norm-based attention of one query row (Kobayashi et al. 2020, "Attention is not only a
// weight"), for every key j of one layer:
//
//   f^h(x_j)  = v_j^{g(h)} W_O^hᵀ ∈ R^d,   f^h(x_j)[o] = Σ_{e<Dh} v[j, g(h), e] · W_O[o, h·Dh + e]
//   head[h, j]  = ‖α^h_j f^h(x_j)‖ = α^h_j · ‖f^h(x_j)‖
//   layer[j]    = ‖Σ_h α^h_j f^h(x_j)‖
//
// with α [Hq, Skv] the softmax weights of the query row (attention_row.wgsl), v the value
// projection (x W_V + b_V, bias included: it is part of f), W_O the HF o_proj / out_proj
// weight [d, Hq·Dh] ([out, in]; f32 or packed f16) and g(h) = h / (Hq / Hkv) (GQA). The
// output projection's bias is not part of f (it does not depend on j) and is never read.
//
// Layout (elements): alpha [Hq, Skv]; v [Skv_cap, Hkv, Dh] (rows 0..Skv−1 used);
// w [d, Hq·Dh]; gram [Hq, Dh, Dh]; u [Skv, Hq·Dh]; y [Skv, d]; head [.., Hq, Skv] and
// layer [.., Skv] written at element offsets head_at and layer_at.
//
// One compiled variant per stage (define STAGE_*):
//   WEIGHTED  u[j, h·Dh + e] = α[h, j] · v[j, g(h), e]. One invocation per element.
//             (src/ops/norm-attention.ts then runs y = u W_Oᵀ through matmul.wgsl, so
//             y[j] = Σ_h α^h_j f^h(x_j).)
//   ROW_NORM  layer[j] = ‖y[j, :]‖. One workgroup per row.
//   GRAM      gram[h] = W_O^hᵀ W_O^h (Dh × Dh; depends on the weight only, so callers may
//             keep it across inputs). One invocation per 4×4 block, like matmul.wgsl.
//   HEADS     head[h, j] = α[h, j] · sqrt(v_jᵀ gram[h] v_j) — ‖f^h(x_j)‖² as a quadratic
//             form: Dh² instead of d·Dh multiply-adds per (j, h), 32× fewer for LLaMA-7B.
//             One workgroup per (J keys, head): the J value rows sit in workgroup memory,
//             each invocation takes output dims e, e + WG, ...; a tree sums the J partials.
#include "lib/grid.wgsl"

struct Params {
  Skv: u32,       // keys (tokens) in use
  Hq: u32,        // query heads
  Hkv: u32,       // key/value heads (Hq % Hkv == 0)
  Dh: u32,        // head dim (elements, ≤ MAX_DH)
  d: u32,         // output features of W_O (hidden size)
  head_at: u32,   // HEADS: element offset of this call's [Hq, Skv] block of head
  layer_at: u32,  // ROW_NORM: element offset of this call's [Skv] row of layer
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64u; // ROW_NORM, HEADS: a power of two (lib/reduce.wgsl); WEIGHTED: any

fn kv_head(h: u32) -> u32 {
  return h / (p.Hq / p.Hkv);
}

#if STAGE_WEIGHTED
@group(0) @binding(1) var<storage, read> alpha: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> u: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wid, nwg) * WG + lid;
  let width = p.Hq * p.Dh;
  if (i >= p.Skv * width) { return; }
  let j = i / width;
  let c = i - j * width;
  let h = c / p.Dh;
  let e = c - h * p.Dh;
  u[i] = alpha[h * p.Skv + j] * v[(j * p.Hkv + kv_head(h)) * p.Dh + e];
}
#endif

#if STAGE_ROW_NORM
#include "lib/reduce.wgsl"
@group(0) @binding(6) var<storage, read> y: array<f32>;
@group(0) @binding(8) var<storage, read_write> layer: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let j = workgroup_index(wid, nwg);
  if (j >= p.Skv) { return; } // the same for the whole workgroup
  let base = j * p.d;
  var q = 0.0;
  for (var o = lid; o < p.d; o += WG) {
    let t = y[base + o];
    q += t * t;
  }
  let s = wg_sum(q, lid);
  if (lid == 0u) {
    layer[p.layer_at + j] = sqrt(s);
  }
}
#endif

#if STAGE_GRAM
// defines: VEC4 (Dh % 4 == 0), W_F16, W_BINDING = 3 (lib/weights.wgsl)
#include "lib/weights.wgsl"
@group(0) @binding(4) var<storage, read_write> gram: array<f32>;

#if VEC4
// W_O[o, col .. col + 3] (col a multiple of 4)
fn w4(o: u32, col: u32, last: u32) -> vec4<f32> {
  return w_vec4(o * p.Hq * p.Dh + col);
}
#else
// W_O[o, col .. col + 3], columns past `last` clamped to it (their results are not stored)
fn w4(o: u32, col: u32, last: u32) -> vec4<f32> {
  let r = o * p.Hq * p.Dh;
  return vec4<f32>(w_at(r + min(col, last)), w_at(r + min(col + 1u, last)), w_at(r + min(col + 2u, last)), w_at(r + min(col + 3u, last)));
}
#endif

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

// workgroups: (ceil(Dh / 4 / WG_X), ceil(Dh / 4 / WG_Y), Hq)
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let f0 = gid.x * 4u;
  let e0 = gid.y * 4u;
  let h = gid.z;
  if (f0 >= p.Dh || e0 >= p.Dh) { return; }
  let col0 = h * p.Dh;
  let last = col0 + p.Dh - 1u;
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var o = 0u; o < p.d; o++) {
    let a = w4(o, col0 + e0, last);
    let b = w4(o, col0 + f0, last);
    acc[0] += a.x * b;
    acc[1] += a.y * b;
    acc[2] += a.z * b;
    acc[3] += a.w * b;
  }
  let base = h * p.Dh * p.Dh;
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) {
      if (e0 + r < p.Dh && f0 + c < p.Dh) {
        gram[base + (e0 + r) * p.Dh + f0 + c] = acc[r][c];
      }
    }
  }
}
#endif

#if STAGE_HEADS
@group(0) @binding(1) var<storage, read> alpha: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> gram: array<f32>;
@group(0) @binding(7) var<storage, read_write> head: array<f32>;

const J: u32 = 8u;        // keys per workgroup
const MAX_DH: u32 = 128u; // largest head dim (src/ops/attention.ts MAX_HEAD_DIM)

var<workgroup> vs: array<f32, J * MAX_DH>;  // v[j0 + jj, g, :] at jj · Dh
var<workgroup> red: array<f32, J * WG>;     // partial sums, jj · WG + invocation

// workgroups: (ceil(Skv / J), Hq)
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j0 = wid.x * J;
  let h = wid.y;
  let g = kv_head(h);
  let Dh = p.Dh;
  for (var i = lid; i < J * Dh; i += WG) {
    let j = j0 + i / Dh;
    vs[i] = select(0.0, v[(min(j, p.Skv - 1u) * p.Hkv + g) * Dh + i % Dh], j < p.Skv);
  }
  workgroupBarrier();

  // part[jj] = Σ_{e of this invocation} v[e] · (gram[h] v)[e]; gram is symmetric, so
  // (gram v)[e] = Σ_f gram[f, e] v[f]: adjacent invocations read adjacent words.
  var part = array<f32, J>();
  let G = h * Dh * Dh;
  for (var e = lid; e < Dh; e += WG) {
    // With an initializer: Dawn → SPIR-V → lavapipe (Mesa 25) zeroes a loop-local `var t:
    // array<f32, J>;` only once, not at every iteration as WGSL says (measured).
    var t = array<f32, J>();
    for (var f = 0u; f < Dh; f++) {
      let gv = gram[G + f * Dh + e];
      for (var jj = 0u; jj < J; jj++) {
        t[jj] += gv * vs[jj * Dh + f];
      }
    }
    for (var jj = 0u; jj < J; jj++) {
      part[jj] += t[jj] * vs[jj * Dh + e];
    }
  }
  for (var jj = 0u; jj < J; jj++) {
    red[jj * WG + lid] = part[jj];
  }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var jj = 0u; jj < J; jj++) {
        red[jj * WG + lid] += red[jj * WG + lid + s];
      }
    }
    workgroupBarrier();
  }
  let j = j0 + lid;
  if (lid < J && j < p.Skv) {
    // ‖f‖² ≥ 0 exactly; rounding can leave a tiny negative for a zero value row
    head[p.head_at + h * p.Skv + j] = alpha[h * p.Skv + j] * sqrt(max(red[lid * WG], 0.0));
  }
}
#endif
