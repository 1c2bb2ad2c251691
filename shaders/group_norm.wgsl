// y = (x − mean_g) / sqrt(var_g + eps) · weight[c] + bias[c], then optionally SiLU — torch
// `nn.GroupNorm(G, C)` (each group: C/G consecutive channels over every position, biased
// variance), as Chameleon's VQ encoder uses it, with the SiLU that follows it fused.
//   x [N, C] f32 (channels last: N positions), weight [C], bias [C] f32 or packed f16,
//   y [N, C] f32
// A group is N·C/G elements (a million at Chameleon-7B's 512² level), too many for one
// workgroup, so it is cut into `parts` chunks of `chunk` elements, one workgroup each
// (workgroups [parts, G]), in two dispatches:
//   STATS  each chunk's moment_sums (lib/moments.wgsl) → partial [G, parts, 3]
//   apply  each workgroup combines its group's parts (combined_moments; at most a few
//          hundred, so every chunk redoing it costs little) and normalises its chunk.
//
// defines: STATS; else PARTS (lib/moments.wgsl's combined_moments), SILU, WEIGHT_F16, BIAS,
// BIAS_F16 (lib/affine.wgsl), WEIGHT_BINDING=3, BIAS_BINDING=4
#include "lib/reduce.wgsl"
#include "lib/moments.wgsl"

struct Params {
  N: u32,     // positions
  C: u32,     // channels
  G: u32,     // groups
  eps: f32,   // added to the variance
  chunk: u32, // elements of a group per workgroup
  parts: u32, // chunks per group
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if STATS
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
#else
@group(0) @binding(2) var<storage, read> partial: array<f32>;
// binding 3: weight, binding 4: bias (lib/affine.wgsl)
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#include "lib/affine.wgsl"
#include "lib/activations.wgsl"
#endif

override WG: u32 = 256u; // a power of two (lib/reduce.wgsl)

var<private> g: u32;     // the group
var<private> cg: u32;    // channels per group
var<private> start: u32; // the chunk's first element in the group

// element i of the group: position i / cg, channel g·cg + i mod cg
fn at(i: u32) -> u32 {
  let n = i / cg;
  return n * p.C + g * cg + (i - n * cg);
}

fn moment_x(i: u32) -> f32 {
  return x[at(start + i)];
}

fn part_size(j: u32) -> f32 {
  return f32(min(p.chunk, p.N * cg - j * p.chunk));
}

fn part_sums(j: u32) -> Sums {
  let o = 3u * (g * p.parts + j);
  return Sums(partial[o], partial[o + 1u], partial[o + 2u]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  g = wid.y;
  cg = p.C / p.G;
  start = wid.x * p.chunk;
  let count = min(p.chunk, p.N * cg - start);
#if STATS
  let m = moment_sums(count, lid);
  if (lid == 0u) {
    let o = 3u * (g * p.parts + wid.x);
    partial[o] = m.mean;
    partial[o + 1u] = m.corr;
    partial[o + 2u] = m.q;
  }
#else
  let m = combined_moments(p.parts, p.N * cg, lid, p.eps);
  for (var i = lid; i < count; i += WG) {
    let e = at(start + i);
    let c = e % p.C;
    var v = normalized(x[e], m) * weight_at(c) + bias_at(c);
#if SILU
    v = silu(v);
#endif
    y[e] = v;
  }
#endif
}
