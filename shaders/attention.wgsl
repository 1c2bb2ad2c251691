// out[i, h, :] = Σ_j softmax_j(s(i, j)) · v[j, h / (Hq / Hkv), :]      (draft)
#include "lib/attention_scores.wgsl"
#if VEC4
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
#else
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
#endif

override WG: u32 = 64u;
const T: u32 = $TILEu;  // keys per tile: scores of T keys, one rescale, then T value updates

var<private> o: array<vec4<f32>, DV4>;  // running Σ_j exp(s_j − m_run) v_j
var<private> m_run: f32;                // running max score
var<private> l_run: f32;                // running Σ_j exp(s_j − m_run)

#if VEC4
fn v4(base: u32, i: u32) -> vec4<f32> { return v[(base >> 2u) + i]; }
#else
fn v4(base: u32, i: u32) -> vec4<f32> {
  let d = base + 4u * i;
  let n = base + D;
  return vec4<f32>(v[d], select(0.0, v[d + 1u], d + 1u < n), select(0.0, v[d + 2u], d + 2u < n), select(0.0, v[d + 3u], d + 3u < n));
}
#endif

// Online softmax over keys [jb, je) for query `row` against kv head g (flash-attention
// style: per tile, the scores, the new running max, one rescale of o and l, the T updates).
fn attend(row: u32, g: u32, jb: u32, je: u32) {
  for (var j0 = jb; j0 < je; j0 += T) {
    var s: array<f32, T>;
    var tmax = NEG_BIG;
    for (var t = 0u; t < T; t++) {
      let j = min(j0 + t, je - 1u);
      let x = select(score(row, j, g), NEG_BIG, j0 + t >= je);
      s[t] = x;
      tmax = max(tmax, x);
    }
    let mn = max(m_run, tmax);
    let c = exp(m_run - mn);
    var sum = 0.0;
    for (var t = 0u; t < T; t++) {
      s[t] = weight(s[t], mn);
      sum += s[t];
    }
    l_run = l_run * c + sum;
    m_run = mn;
    for (var i = 0u; i < DV4; i++) {
      var acc = o[i] * c;
      for (var t = 0u; t < T; t++) {
        acc = fma(vec4<f32>(s[t]), v4(head_base(min(j0 + t, je - 1u), p.Hkv, g), i), acc);
      }
      o[i] = acc;
    }
  }
}

// out[row, h, :] = o · w
fn store(row: u32, h: u32, w: f32) {
  let base = head_base(row, p.Hq, h);
#if VEC4
  for (var i = 0u; i < DV4; i++) {
    out[(base >> 2u) + i] = o[i] * w;
  }
#else
  for (var d = 0u; d < D; d++) {
    out[base + d] = o[d >> 2u][d & 3u] * w;
  }
#endif
}

#if SPLIT
var<workgroup> part: array<vec4<f32>, WG * DV4>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let h = wid.y;
  let g = kv_head(h);
  var kend = p.Skv;
#if CAUSAL
  kend = min(p.Skv, p.qPos0 + row + 1u);
#endif
  let chunk = (kend + WG - 1u) / WG;
  let jb = min(lid * chunk, kend);
  let je = min(jb + chunk, kend);
  load_q(row, h);
  m_run = NEG_BIG;
  attend(row, g, jb, je);
  part[lid] = vec4<f32>(m_run, l_run, 0.0, 0.0);
  workgroupBarrier();
  var ml = vec2<f32>(NEG_BIG, 0.0);
  for (var t = 0u; t < WG; t++) {
    ml = merge_ml(ml, part[t].xy);
  }
  let w = select(0.0, exp(m_run - ml.x) / ml.y, ml.y > 0.0);
  workgroupBarrier();
  for (var i = 0u; i < DV4; i++) {
    part[lid * DV4 + i] = o[i] * w;
  }
  workgroupBarrier();
  if (lid == 0u) {
    for (var i = 0u; i < DV4; i++) {
      var acc = vec4<f32>(0.0);
      for (var t = 0u; t < WG; t++) {
        acc += part[t * DV4 + i];
      }
      o[i] = acc;
    }
    store(row, h, 1.0);
  }
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let g = kv_head(h);
  let r0 = wid.x * WG;
  let row = min(r0 + lid, p.Sq - 1u);
  var kend = p.Skv;
#if CAUSAL
  kend = min(p.Skv, p.qPos0 + min(r0 + WG, p.Sq));  // keys any row of this workgroup sees
#endif
  load_q(row, h);
  m_run = NEG_BIG;
  attend(row, g, 0u, kend);
  if (r0 + lid < p.Sq) {
    store(row, h, select(0.0, 1.0 / l_run, l_run > 0.0));
  }
}
#endif
