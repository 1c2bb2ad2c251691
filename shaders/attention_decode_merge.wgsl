// Pass 2 of the 'decode' attention variant (flash-decoding; pass 1 is attention_flash.wgsl
// with SPLIT): combines the per-chunk partial softmax states of each (query row, head).
//
//   chunk c of row i, head h left  m_c = its max score, l_c = Σ exp(s − m_c),
//                                  o_c = Σ exp(s − m_c) v   (unnormalised, head dim D)
//   M = max_c m_c,   L = Σ_c l_c e^(m_c − M),   out[i, h, :] = Σ_c o_c e^(m_c − M) / L
//
// A chunk without visible keys has (m, l, o) = (−3e38, 0, 0) and drops out; a row with no
// visible key anywhere has L = 0 and writes 0 (as attention.wgsl does).
//
// One workgroup per (row, head) (grid [Sq, Hq]); invocation t combines head-dim vec4s
// t, t + WG, ...; every invocation reads the row's (m, l) pairs itself (a few dozen at most).
struct Params {
  Sq: u32,      // query rows
  Hq: u32,      // query heads
  chunks: u32,  // partial states per (row, head)
  dv4: u32,     // head dim in vec4s, ⌈D/4⌉
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part_o: array<vec4<f32>>;   // [Sq, Hq, chunks, dv4]
@group(0) @binding(2) var<storage, read> part_ml: array<vec2<f32>>;  // [Sq, Hq, chunks]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;      // [Sq, Hq, D]

const D: u32 = $Du;  // head dim (elements)
override WG: u32 = 32u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let h = wid.y;
  let at = (row * p.Hq + h) * p.chunks;
  var m = -3e38;
  for (var c = 0u; c < p.chunks; c++) {
    m = max(m, part_ml[at + c].x);
  }
  var l = 0.0;
  for (var c = 0u; c < p.chunks; c++) {
    l += part_ml[at + c].y * exp(part_ml[at + c].x - m);
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let base = (row * p.Hq + h) * D;
  for (var i = lid; i < p.dv4; i += WG) {
    var acc = vec4<f32>(0.0);
    for (var c = 0u; c < p.chunks; c++) {
      acc = fma(vec4<f32>(exp(part_ml[at + c].x - m)), part_o[(at + c) * p.dv4 + i], acc);
    }
    acc *= inv;
    for (var e = 0u; e < 4u; e++) {
      if (4u * i + e < D) {
        out[base + 4u * i + e] = acc[e];
      }
    }
  }
}
