// Softmax attention, one head dim ≤ 128, f32 (src/ops/attention.ts):
//   out[i, h·D + d] = Σ_j α_ij v[j, g, d],  α_ij = softmax_j(s(i, j)),  g = h / (Hq / Hkv)
// with s, the mask and causality from lib/attention_scores.wgsl. Flash-attention style:
// keys are consumed in tiles of T with a running max m and sum l per query row (online
// softmax, f32); no score matrix is stored. A fully blocked row (l = 0) writes 0.
//
// Two variants for CPU-class kernels (lavapipe, SwiftShader), picked by pickVariant() in
// src/ops/attention.ts; GPU-class kernels run attention_flash.wgsl ('flash', 'decode'):
//   rows  (default, Sq ≥ 64): workgroup = WG·R query rows of one head; invocation = R rows
//         (R = ROWS). The key loop is the same for the whole workgroup (causal: up to the
//         workgroup's last row, later keys masked per row), so every k/v address is uniform:
//         lavapipe loads it once and broadcasts it, and each load feeds R rows. No workgroup
//         memory, no barriers. Rows past Sq repeat row Sq−1 and are not stored.
//   split (SPLIT, Sq < 64: decoding, Q-Former queries): workgroup = one (query row, head);
//         invocation t takes a contiguous 1/WG of the keys with its own (m, l, o), then
//         the WG partial states are merged through workgroup memory (3 barriers).
//
// Measured on lavapipe (2 shared cores, AMD EPYC, Mesa 25; GFLOP/s = 4·pairs·Hq·D / time,
// pairs = unmasked query–key pairs; the machine was shared, so wall times vary ~2×; the
// process CPU time is the steadier figure, given as GFLOP/s per core):
//   CLIP-L 600×600, 16 heads, D=64:     rows R=1 5.2–5.6, R=2 7.8–7.9, R=4 7.3–8.5,
//                                       split 3.2–3.3 GFLOP/s (R=2: 190 ms)
//                                       (CPU: R=1 2.5–2.7, R=2 3.0–3.8, R=4 3.4–3.8 /core)
//   the same, causal:                   R=1 3.9–4.6, R=2 5.6–6.0, R=4 4.1–4.5 GFLOP/s
//   LLaMA prefill 600, 32×128, causal:  R=1 4.4–4.7, R=2 3.3–6.1 (R=2: 480 ms) GFLOP/s;
//                                       CPU R=1 2.2–2.3, R=2 3.0, R=4 2.5 GFLOP/s/core
//   decode 1×600, 32 heads, D=128:      split 2.3–2.5 GFLOP/s (4 ms); rows 0.04–0.08
//   Sq=48, Skv=600: split 2× rows (R=4); Sq=257, D=88: rows R=2 ≈ R=4 1.2× split;
//   Sq=128: rows R=2 1.7× split.
//   Keys per tile T = 2, 4, 8, 16: 4 and 8 best (within noise), 16 and 2 slower.
//   Also tried: a fully unrolled body for D=64 (generated code): 2× slower (spills);
//   head-dim loops with a compile-time trip count: the same speed as the run-time bound
//   (p.dv4) but 10–80 s to compile per pipeline, so the bound is a uniform.
// GPU-class kernels take R = 1 (registers: each row holds 2·D floats) where they fall back
// to 'rows' (no flash tile fits the workgroup memory); not measured on a GPU.
#include "lib/attention_scores.wgsl"
#include "lib/attention_values.wgsl"

override WG: u32 = 64u;
const T: u32 = $TILEu;  // keys per tile: scores of T keys, one rescale, then T value updates

var<private> o: array<array<vec4<f32>, DV4>, R>;  // per row: running Σ_j exp(s_j − m) v_j
var<private> m_run: array<f32, R>;                 // per row: running max score m
var<private> l_run: array<f32, R>;                 // per row: running Σ_j exp(s_j − m)
var<private> rows: array<u32, R>;                  // this invocation's query rows

// Online softmax of this invocation's rows over keys [jb, je) of kv head g, T keys at a
// time: the T·R dot products (head dim outermost, so each k and v vec4 is loaded once for
// the R rows), then per row the tile's max, one rescale of o and l, and T updates of o.
fn attend(g: u32, jb: u32, je: u32) {
  for (var j0 = jb; j0 < je; j0 += T) {
    var kb: array<u32, T>;  // element offsets of the tile's key/value rows (clamped)
    for (var t = 0u; t < T; t++) {
      kb[t] = head_base(min(j0 + t, je - 1u), p.Hkv, g);
    }
    // Zeroed explicitly: on Dawn + lavapipe a bare `var x: array<...>;` inside a loop keeps
    // the previous iteration's value instead of being zero-initialised again.
    var dots = array<array<vec4<f32>, T>, R>();
    for (var i = 0u; i < p.dv4; i++) {
      var qi: array<vec4<f32>, R>;
      for (var r = 0u; r < R; r++) {
        qi[r] = qv[r][i];
      }
      for (var t = 0u; t < T; t++) {
        let kk = k4(kb[t], i);
        for (var r = 0u; r < R; r++) {
          dots[r][t] = fma(qi[r], kk, dots[r][t]);
        }
      }
    }
    var w: array<array<f32, T>, R>;  // exp(s − new max), 0 for blocked keys
    var c: array<f32, R>;            // rescale of the old state
    for (var r = 0u; r < R; r++) {
      var tmax = NEG_BIG;
      for (var t = 0u; t < T; t++) {
        let x = select(finish_score(rows[r], min(j0 + t, je - 1u), hsum(dots[r][t])), NEG_BIG, j0 + t >= je);
        w[r][t] = x;
        tmax = max(tmax, x);
      }
      let mn = max(m_run[r], tmax);
      c[r] = exp(m_run[r] - mn);
      var sum = 0.0;
      for (var t = 0u; t < T; t++) {
        w[r][t] = weight(w[r][t], mn);
        sum += w[r][t];
      }
      l_run[r] = l_run[r] * c[r] + sum;
      m_run[r] = mn;
    }
    for (var i = 0u; i < p.dv4; i++) {
      var acc: array<vec4<f32>, R>;
      for (var r = 0u; r < R; r++) {
        acc[r] = o[r][i] * c[r];
      }
      for (var t = 0u; t < T; t++) {
        let vv = v4(kb[t], i);
        for (var r = 0u; r < R; r++) {
          acc[r] = fma(vec4<f32>(w[r][t]), vv, acc[r]);
        }
      }
      for (var r = 0u; r < R; r++) {
        o[r][i] = acc[r];
      }
    }
  }
}

#if SPLIT
var<workgroup> part: array<vec4<f32>, WG * DV4>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let h = wid.y;
  let g = kv_head(h);
  rows[0] = row;
  var kend = p.Skv;
#if CAUSAL
  kend = min(p.Skv, p.qPos0 + row + 1u);
#endif
  let chunk = (kend + WG - 1u) / WG;
  let jb = min(lid * chunk, kend);
  let je = min(jb + chunk, kend);
  load_q(0u, row, h);
  m_run[0] = NEG_BIG;
  attend(g, jb, je);
  part[lid] = vec4<f32>(m_run[0], l_run[0], 0.0, 0.0);
  workgroupBarrier();
  var ml = vec2<f32>(NEG_BIG, 0.0);
  for (var t = 0u; t < WG; t++) {
    ml = merge_ml(ml, part[t].xy);
  }
  let w = select(0.0, exp(m_run[0] - ml.x) / ml.y, ml.y > 0.0);
  workgroupBarrier();
  for (var i = 0u; i < DV4; i++) {
    part[lid * DV4 + i] = o[0][i] * w;
  }
  workgroupBarrier();
  for (var i = lid; i < DV4; i += WG) {
    var acc = vec4<f32>(0.0);
    for (var t = 0u; t < WG; t++) {
      acc += part[t * DV4 + i];
    }
    store4(row, h, i, acc);
  }
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let g = kv_head(h);
  let r0 = wid.x * WG * R;  // this workgroup's rows: r0 + r·WG + lid
  for (var r = 0u; r < R; r++) {
    rows[r] = min(r0 + r * WG + lid, p.Sq - 1u);
    load_q(r, rows[r], h);
    m_run[r] = NEG_BIG;
  }
  var kend = p.Skv;
#if CAUSAL
  kend = min(p.Skv, p.qPos0 + min(r0 + R * WG, p.Sq));  // keys any row of the workgroup sees
#endif
  attend(g, 0u, kend);
  for (var r = 0u; r < R; r++) {
    if (r0 + r * WG + lid < p.Sq) {
      let w = select(0.0, 1.0 / l_run[r], l_run[r] > 0.0);  // 0 for a fully blocked row
      for (var i = 0u; i < DV4; i++) {
        store4(rows[r], h, i, o[r][i] * w);
      }
    }
  }
}
#endif
