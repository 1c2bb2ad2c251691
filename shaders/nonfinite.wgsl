// counts[p.slot] += the number of non-finite elements (NaN, ±Inf) of x — the cheap check
// of the residual stream after every layer (src/probes/finite.ts).
//   x [n] f32, counts [slots] u32 (atomic)
// NaN and Inf are the floats whose exponent bits are all ones; WGSL has no isNan, and an
// implementation may assume `x != x` is false, so the bits are tested. Finite values never
// touch the counter: the atomic is hit only where something already went wrong.
// One invocation per element.
#include "lib/grid.wgsl"

struct Params {
  n: u32,    // elements of x
  slot: u32, // which counter
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>; // f32 bits
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroup_index(wid, nwg) * WG + lid;
  if (e >= p.n) { return; }
  if ((x[e] & 0x7f800000u) == 0x7f800000u) {
    atomicAdd(&counts[p.slot], 1u);
  }
}
