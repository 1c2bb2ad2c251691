// Attention mass of one query row on groups of keys, averaged over heads:
//
//   out[out_at + g] = 1/H · Σ_h Σ_{j : group[j] = g} α[h, j]        g = 0..G−1
//
//   alpha [H, Skv] f32 (attention_row.wgsl's softmax weights); group [Skv] u32, the group
//   of each key (G or more: in no group); out f32, G entries from out_at.
//
// One workgroup per group: each invocation folds a strided slice of the keys over every
// head, then a tree sum (lib/reduce.wgsl). G·H·Skv reads, for a handful of groups.
#include "lib/reduce.wgsl"

struct Params {
  Skv: u32,
  H: u32,
  G: u32,
  out_at: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> alpha: array<f32>;
@group(0) @binding(2) var<storage, read> group: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 64u; // a power of two (lib/reduce.wgsl)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x;
  var s = 0.0;
  for (var j = lid; j < p.Skv; j += WG) {
    if (group[j] == g) {
      for (var h = 0u; h < p.H; h++) {
        s += alpha[h * p.Skv + j];
      }
    }
  }
  let total = wg_sum(s, lid);
  if (lid == 0u) {
    out[p.out_at + g] = total / f32(p.H);
  }
}
