// dst[2w], dst[2w + 1] = the two 16-bit floats packed in src[w] (low half first, as in the
// safetensors bytes), widened to f32 — exactly: both f16 and bf16 embed in f32.
//   src [⌈n/2⌉] u32 words, dst [n] f32
// One invocation per word.
//
// defines: BF16 (bfloat16 halves; otherwise IEEE f16)
#include "lib/grid.wgsl"
#include "lib/half.wgsl"

struct Params {
  n: u32, // elements (16-bit values) to convert
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = workgroup_index(wid, nwg) * WG + lid;
  let i = 2u * w;
  if (i >= p.n) { return; }
#if BF16
  let v = unpack2x16bfloat(src[w]);
#else
  let v = unpack2x16float(src[w]);
#endif
  dst[i] = v.x;
  if (i + 1u < p.n) { dst[i + 1u] = v.y; }
}
