// y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · weight + bias — HF `nn.LayerNorm` over
// the last dimension, biased variance (÷ D), all arithmetic in f32; the moments as
// lib/moments.wgsl computes them (two passes with a correction term).
//   x [rows, D] f32, weight [D] and bias [D] f32 or packed f16, y [rows, D] f32
// With PARAM_ROWS = R > 1, weight and bias are [R, D] and row r uses row r mod R of them:
// Chameleon's per-head q/k norm (x [pos·heads, head_dim], weight [heads, head_dim]).
//
// One workgroup per row (rows split over x/y by Gpu.grid).
//
// defines: WEIGHT_F16, BIAS, BIAS_F16 (see lib/affine.wgsl), WEIGHT_BINDING=2, BIAS_BINDING=3
#include "lib/grid.wgsl"
#include "lib/reduce.wgsl"
#include "lib/moments.wgsl"
#include "lib/affine.wgsl"

struct Params {
  rows: u32,       // rows of x (tokens)
  D: u32,          // features per row (elements)
  eps: f32,        // added to the variance
  param_rows: u32, // rows of weight and bias (1: shared by every row)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// binding 2: weight, binding 3: bias (lib/affine.wgsl)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u; // a power of two (lib/reduce.wgsl)

var<private> row_base: u32;

fn moment_x(i: u32) -> f32 {
  return x[row_base + i];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = workgroup_index(wid, nwg);
  if (row >= p.rows) { return; } // the same for the whole workgroup
  row_base = row * p.D;
  let m = moments(p.D, lid, p.eps);
  let pbase = (row % p.param_rows) * p.D;
  for (var i = lid; i < p.D; i += WG) {
    y[row_base + i] = normalized(x[row_base + i], m) * weight_at(pbase + i) + bias_at(pbase + i);
  }
}
