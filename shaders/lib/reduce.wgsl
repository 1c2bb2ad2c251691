// Workgroup-wide reductions for the row kernels (layernorm, rmsnorm, softmax): one workgroup owns
// one row, each invocation folds a strided slice of it, then wg_sum combines the partial
// sums in a tree through workgroup memory (no subgroups needed).
//
// The including shader declares `override WG: u32` (its workgroup size, a power of two)
// and calls wg_sum from uniform control flow (every invocation of the workgroup), passing
// its local_invocation_index. The result is returned to every invocation.

var<workgroup> wg_partial: array<f32, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  wg_partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      wg_partial[lid] += wg_partial[lid + s];
    }
    workgroupBarrier();
  }
  let total = wg_partial[0];
  workgroupBarrier(); // the buffer may be reused by the next call
  return total;
}

// The row maximum, the same way (softmax's shift).
fn wg_max(v: f32, lid: u32) -> f32 {
  wg_partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      wg_partial[lid] = max(wg_partial[lid], wg_partial[lid + s]);
    }
    workgroupBarrier();
  }
  let total = wg_partial[0];
  workgroupBarrier();
  return total;
}
