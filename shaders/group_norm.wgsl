// y = (x − mean_g) / sqrt(var_g + eps) · weight[c] + bias[c], then optionally SiLU — torch
// `nn.GroupNorm(G, C)` (each group: C/G consecutive channels over every position, biased
// variance), as Chameleon's VQ encoder uses it, with the SiLU that follows it fused.
//   x [N, C] f32 (channels last: N positions), weight [C], bias [C] f32 or packed f16,
//   y [N, C] f32
// One workgroup per group; the moments as lib/moments.wgsl computes them.
//
// defines: SILU; WEIGHT_F16, BIAS, BIAS_F16 (lib/affine.wgsl), WEIGHT_BINDING=2, BIAS_BINDING=3
#include "lib/reduce.wgsl"
#include "lib/moments.wgsl"
#include "lib/affine.wgsl"
#include "lib/activations.wgsl"

struct Params {
  N: u32,   // positions
  C: u32,   // channels
  G: u32,   // groups
  eps: f32, // added to the variance
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// binding 2: weight, binding 3: bias (lib/affine.wgsl)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u; // a power of two (lib/reduce.wgsl)

var<private> c0: u32; // the group's first channel
var<private> cg: u32; // channels per group

// element i of the group: position i / cg, channel c0 + i mod cg
fn at(i: u32) -> u32 {
  let n = i / cg;
  return n * p.C + c0 + (i - n * cg);
}

fn moment_x(i: u32) -> f32 {
  return x[at(i)];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  cg = p.C / p.G;
  c0 = wid.x * cg;
  let count = p.N * cg;
  let m = moments(count, lid, p.eps);
  for (var i = lid; i < count; i += WG) {
    let e = at(i);
    let c = c0 + i % cg;
    var v = normalized(x[e], m) * weight_at(c) + bias_at(c);
#if SILU
    v = silu(v);
#endif
    y[e] = v;
  }
}
