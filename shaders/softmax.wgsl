// y[r, :] = softmax(scale · x[r, :]) — torch `F.softmax(x * scale, dim=-1)`, in f32.
//   x [rows, D] f32, y [rows, D] f32
//
// One workgroup per row (rows split over x/y by Gpu.grid): the row maximum, then
// Σ exp(s − max), both through workgroup tree reductions, then each invocation writes its
// strided slice. scale · x is rounded to f32 before the shift, as torch's two steps do.
#include "lib/grid.wgsl"
#include "lib/reduce.wgsl"

struct Params {
  rows: u32,  // rows of x
  D: u32,     // elements per row
  scale: f32, // applied before the softmax
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u; // a power of two (lib/reduce.wgsl)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = workgroup_index(wid, nwg);
  if (row >= p.rows) { return; } // the same for the whole workgroup
  let base = row * p.D;

  var m = -3.4028234e38; // ≈ −FLT_MAX (the literal must round within f32 range)
  for (var i = lid; i < p.D; i += WG) {
    m = max(m, p.scale * x[base + i]);
  }
  m = wg_max(m, lid);

  var s = 0.0;
  for (var i = lid; i < p.D; i += WG) {
    s += exp(p.scale * x[base + i] - m);
  }
  let inv = 1.0 / wg_sum(s, lid);

  for (var i = lid; i < p.D; i += WG) {
    y[base + i] = exp(p.scale * x[base + i] - m) * inv;
  }
}
