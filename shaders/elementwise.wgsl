// y[i] = OP(a[i]) or OP(a[i], b[j]) — every elementwise op of the models, from this one
// template. src/ops/elementwise.ts holds the table of OP expressions, written in the
// locals `a`, `b` (f32) and the uniform `p.alpha`, e.g.
//   gelu(a)   quick_gelu(a)   silu(a) * b   a + b   a * p.alpha
//   a [n] f32, b [nb] f32 with j = i % nb (nb = n, or a trailing-dims broadcast such as a
//   bias [D] over [rows, D]), y [n] f32
// One invocation per element (workgroups split over x/y by Gpu.grid).
//
// defines: OP (a WGSL expression), BINARY (b is bound), IN_PLACE (a is read_write and
// receives the result; no y)
#include "lib/grid.wgsl"
#include "lib/activations.wgsl"

struct Params {
  n: u32,     // elements of a and y
  nb: u32,    // elements of b (BINARY only; divides n)
  alpha: f32, // scalar operand (e.g. the factor of `scale`)
}

@group(0) @binding(0) var<uniform> p: Params;
#if IN_PLACE
@group(0) @binding(1) var<storage, read_write> in_a: array<f32>;
#else
@group(0) @binding(1) var<storage, read> in_a: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#endif
#if BINARY
@group(0) @binding(2) var<storage, read> in_b: array<f32>;
#endif

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wid, nwg) * WG + lid;
  if (i >= p.n) { return; }
  let a = in_a[i];
#if BINARY
  let b = in_b[select(i % p.nb, i, p.nb == p.n)];
#endif
  let r = $OP;
#if IN_PLACE
  in_a[i] = r;
#else
  y[i] = r;
#endif
}
