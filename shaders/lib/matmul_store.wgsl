// The output side of the matmul kernels (matmul.wgsl, matmul_sgmat.wgsl, the split-K
// reduction matmul_splitk.wgsl): y (binding 5), the optional bias (3) and residual (4), and
//   store(row, col, v)   adds v to y (p.flags bit 0) and, on the last pass (bit 1), applies
//                        the fused epilogue: bias, activation ($ACT), residual;
//                        out-of-range outputs are dropped.
// The includer's uniform `p` has M, N and flags.
#include "lib/activations.wgsl"
#if ONE_PRODUCT
#include "lib/f16_round.wgsl"
#endif

#if BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#if RESIDUAL
@group(0) @binding(4) var<storage, read> residual: array<f32>;
#endif
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

fn store(row: u32, col: u32, v: f32) {
  if (row >= p.M || col >= p.N) { return; }
  let i = row * p.N + col;
  var o = v;
  if ((p.flags & 1u) != 0u) { o += y[i]; }
  if ((p.flags & 2u) != 0u) {
#if BIAS
    o += bias[col];
#endif
#if ONE_PRODUCT
    o = h1(o);  // torch rounds each op's output: the linear's, the activation's, the add's
#endif
    if ($ACT == 1) { o = gelu(o); }
    if ($ACT == 2) { o = quick_gelu(o); }
    if ($ACT == 3) { o = silu(o); }
#if ONE_PRODUCT
    o = h1(o);
#endif
#if RESIDUAL
#if ONE_PRODUCT
    o = h1(o + h1(residual[i]));
#else
    o += residual[i];
#endif
#endif
  }
  y[i] = o;
}
