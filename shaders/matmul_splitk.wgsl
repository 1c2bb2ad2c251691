// The second pass of a split-K matmul (matmul_sgmat.wgsl with nwg.z = splits > 1): y[M, N]
// = the sum of the splits' partial sums part[splits, M, N], in split order, then the fused
// epilogue (bias, activation, residual) through lib/matmul_store.wgsl's store().
// One invocation per output; a grid of Gpu.grid(⌈M·N / WG⌉) workgroups.
//
// defines: BIAS, RESIDUAL, ACT, ONE_PRODUCT (as in matmul.wgsl)
#if ONE_PRODUCT
enable f16;
#endif
#include "lib/grid.wgsl"

struct Params {
  M: u32,
  N: u32,
  splits: u32,
  flags: u32,  // 2: apply the epilogue (store()'s bits)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
#include "lib/matmul_store.wgsl"

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wid, nwg) * WG + lid;
  let MN = p.M * p.N;
  if (i >= MN) { return; }
  var s = 0.0;
  for (var z = 0u; z < p.splits; z++) {
    s += part[z * MN + i];
  }
  store(i / p.N, i % p.N, s);
}
