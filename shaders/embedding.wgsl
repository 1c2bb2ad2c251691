// out[r, :] = table[ids[r] − row_start, :] for the rows whose id falls in this part of the
// table — HF `nn.Embedding` (embed_tokens), for a table cut into row ranges because it
// exceeds the storage-binding limit (LLaMA-7B's is 262 MB in f16; lavapipe binds 128 MiB).
//   ids [n] i32, table part [rows, D] f32 or packed f16, out [n, D] f32
// The op dispatches once per part over the same `out`; each dispatch writes only its own
// rows and leaves the others as they are. One invocation per output element.
//
// defines: W_F16 (lib/weights.wgsl, W_BINDING = 2)
#include "lib/grid.wgsl"

struct Params {
  n: u32,         // ids (output rows)
  D: u32,         // features per row (elements)
  row_start: u32, // first vocabulary row held by this part
  rows: u32,      // vocabulary rows held by this part
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
#include "lib/weights.wgsl"
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroup_index(wid, nwg) * WG + lid;
  if (e >= p.n * p.D) { return; }
  let r = e / p.D;
  let c = e - r * p.D;
  let local = ids[r] - i32(p.row_start);
  if (local < 0 || local >= i32(p.rows)) { return; } // another part's row (or out of range)
  out[e] = w_at(u32(local) * p.D + c);
}
