// idx[n] = argmin_k ‖z[n, :] − e[k, :]‖² — the nearest codeword of a vector quantiser
// (Chameleon's VQ: ChameleonVQVAEVectorQuantizer, torch.argmin, so a tie keeps the
// smaller k). The distance is summed as Σ(z − e)² rather than HF's z² + e² − 2 z·e: the
// same quantity without its cancellation.
//   z [N, D] f32, codebook e [K, D] f32 or packed f16 (lib/weights.wgsl), idx [N] u32
// With MAP, idx[n] = ids[k] instead (ids [K] u32: Chameleon's code → BPE token id).
// One workgroup per row of z: each invocation scans codewords lid, lid + WG, … keeping
// its best (distance, k); a tree over workgroup memory then takes the least.
//
// defines: W_F16, W_BINDING=2, MAP
#include "lib/grid.wgsl"
#include "lib/weights.wgsl"

struct Params {
  N: u32, // rows of z
  K: u32, // codewords
  D: u32, // dimensions
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
// binding 2: the codebook w (lib/weights.wgsl)
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;
#if MAP
@group(0) @binding(4) var<storage, read> ids: array<u32>;
fn mapped(k: u32) -> u32 {
  return ids[k];
}
#else
fn mapped(k: u32) -> u32 {
  return k;
}
#endif

override WG: u32 = 64u; // a power of two

var<workgroup> best_d: array<f32, WG>;
var<workgroup> best_k: array<u32, WG>;

// true if (d, k) is nearer than (e, j), the smaller index winning a tie
fn nearer(d: f32, k: u32, e: f32, j: u32) -> bool {
  return d < e || (d == e && k < j);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = workgroup_index(wid, nwg);
  if (row >= p.N) { return; } // the same for the whole workgroup
  let zb = row * p.D;
  var bd = 3.4028234e38;
  var bk = 0xffffffffu;
  for (var k = lid; k < p.K; k += WG) {
    let eb = k * p.D;
    var d = 0.0;
    for (var i = 0u; i < p.D; i++) {
      let t = z[zb + i] - w_at(eb + i);
      d += t * t;
    }
    if (nearer(d, k, bd, bk)) {
      bd = d;
      bk = k;
    }
  }
  best_d[lid] = bd;
  best_k[lid] = bk;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s && nearer(best_d[lid + s], best_k[lid + s], best_d[lid], best_k[lid])) {
      best_d[lid] = best_d[lid + s];
      best_k[lid] = best_k[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) { idx[row] = mapped(best_k[0]); }
}
