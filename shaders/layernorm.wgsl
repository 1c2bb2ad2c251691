// y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · weight + bias — HF `nn.LayerNorm` over
// the last dimension, biased variance (÷ D), all arithmetic in f32.
//   x [rows, D] f32, weight [D] and bias [D] f32 or packed f16, y [rows, D] f32
//
// One workgroup per row (rows split over x/y by Gpu.grid). Two passes over the row for
// accuracy (the "corrected two-pass" algorithm): the mean m in f32 first, then from the
// centred values d = x − m (exact when |m| ≫ std) both Σd² and the correction c = Σd / D,
// which holds what rounding m to f32 lost. var = Σd²/D − c², y = (d − c)·rstd·w + b.
// A one-pass Σx² − D·m² cancels badly when |m| ≫ std (residual streams), and without c
// the f32 rounding of m alone costs ulp(m)/std of relative error.
//
// defines: WEIGHT_F16, BIAS, BIAS_F16 (see lib/affine.wgsl), WEIGHT_BINDING=2, BIAS_BINDING=3
#include "lib/grid.wgsl"
#include "lib/reduce.wgsl"
#include "lib/affine.wgsl"

struct Params {
  rows: u32, // rows of x (tokens)
  D: u32,    // features per row (elements)
  eps: f32,  // added to the variance
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// binding 2: weight, binding 3: bias (lib/affine.wgsl)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u; // a power of two (lib/reduce.wgsl)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = workgroup_index(wid, nwg);
  if (row >= p.rows) { return; } // the same for the whole workgroup
  let base = row * p.D;
  let n = f32(p.D);

  var s = 0.0;
  for (var i = lid; i < p.D; i += WG) {
    s += x[base + i];
  }
  let mean = wg_sum(s, lid) / n;

  var c = 0.0;
  var q = 0.0;
  for (var i = lid; i < p.D; i += WG) {
    let d = x[base + i] - mean;
    c += d;
    q += d * d;
  }
  let corr = wg_sum(c, lid) / n;
  let variance = max(wg_sum(q, lid) / n - corr * corr, 0.0);
  let rstd = inverseSqrt(variance + p.eps);

  for (var i = lid; i < p.D; i += WG) {
    y[base + i] = ((x[base + i] - mean) - corr) * rstd * weight_at(i) + bias_at(i);
  }
}
