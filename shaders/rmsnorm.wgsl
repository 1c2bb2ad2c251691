// y[r, :] = weight · (x[r, :] · rsqrt(mean(x[r, :]²) + eps)) — HF `LlamaRMSNorm`, in f32.
//   x [rows, D] f32, weight [D] f32 or packed f16, y [rows, D] f32
//
// One workgroup per row (rows split over x/y by Gpu.grid); sum of squares in f32 through
// a workgroup tree reduction.
//
// defines: WEIGHT_F16 (see lib/affine.wgsl), WEIGHT_BINDING=2
#include "lib/grid.wgsl"
#include "lib/reduce.wgsl"
#include "lib/affine.wgsl"

struct Params {
  rows: u32, // rows of x (tokens)
  D: u32,    // features per row (elements)
  eps: f32,  // added to the mean square
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// binding 2: weight (lib/affine.wgsl)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u; // a power of two (lib/reduce.wgsl)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = workgroup_index(wid, nwg);
  if (row >= p.rows) { return; } // the same for the whole workgroup
  let base = row * p.D;

  var q = 0.0;
  for (var i = lid; i < p.D; i += WG) {
    let v = x[base + i];
    q += v * v;
  }
  let scale = inverseSqrt(wg_sum(q, lid) / f32(p.D) + p.eps);

  for (var i = lid; i < p.D; i += WG) {
    y[base + i] = weight_at(i) * (x[base + i] * scale);
  }
}
