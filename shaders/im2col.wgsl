// patches[q, k] = pixels[c, py·P + ky, px·P + kx] — unfolds an image into the rows of a
// stride = kernel convolution, so the conv becomes a matmul (src/ops/patch-embed.ts).
//   pixels [C, H, W] f32, patches [num_patches, C·P·P] f32
//   q = py · grid_w + px (row of patches, then column: HF's flatten(2).transpose(1, 2))
//   k = (c · P + ky) · P + kx (HF Conv2d weight [D, C, P, P] flattened)
// grid_h = ⌊H / P⌋, grid_w = ⌊W / P⌋ (a conv without padding drops the remainder).
// One invocation per patch element.
#include "lib/grid.wgsl"

struct Params {
  C: u32,      // channels
  H: u32,      // image height (pixels)
  W: u32,      // image width (pixels)
  P: u32,      // patch size = stride (pixels)
  grid_w: u32, // patches per row
  n: u32,      // elements of patches: num_patches · C · P · P
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;
@group(0) @binding(2) var<storage, read_write> patches: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroup_index(wid, nwg) * WG + lid;
  if (e >= p.n) { return; }
  let K = p.C * p.P * p.P;
  let q = e / K;
  let k = e - q * K;
  let c = k / (p.P * p.P);
  let ky = (k / p.P) % p.P;
  let kx = k % p.P;
  let py = q / p.grid_w;
  let px = q - py * p.grid_w;
  patches[e] = pixels[(c * p.H + py * p.P + ky) * p.W + px * p.P + kx];
}
