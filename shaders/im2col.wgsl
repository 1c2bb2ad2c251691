// patches[q, k] = x[c, iy, ix] — unfolds an image into the rows of a convolution, so the
// conv becomes a matmul (src/ops/conv2d.ts, src/ops/patch-embed.ts):
//   q = (oy − row0) · out_w + ox        one output position (row-major over the chunk)
//   k = (c · KH + ky) · KW + kx         HF Conv2d weight [D, C, KH, KW] flattened
//   iy = oy · S + ky − pad_top, ix = ox · S + kx − pad_left; 0 outside the image (zero
//   padding: bottom/right padding is whatever the output size reaches past the edge)
// x is read through strides, so one kernel serves [C, H, W] pixels and [H, W, C]
// activations. Output rows row0 .. row0 + rows − 1 only (large images go in chunks).
// One invocation per patch element.
#include "lib/grid.wgsl"

struct Params {
  C: u32,        // channels
  H: u32,        // image height
  W: u32,        // image width
  KH: u32,       // kernel height
  KW: u32,       // kernel width
  S: u32,        // stride
  pad_top: u32,
  pad_left: u32,
  out_w: u32,    // output positions per row
  row0: u32,     // first output row of this chunk
  sc: u32,       // element stride of a channel in x
  sy: u32,       // of a row
  sx: u32,       // of a column
  n: u32,        // elements of patches: rows · out_w · C · KH · KW
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> patches: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroup_index(wid, nwg) * WG + lid;
  if (e >= p.n) { return; }
  let K = p.C * p.KH * p.KW;
  let q = e / K;
  let k = e - q * K;
  let c = k / (p.KH * p.KW);
  let ky = (k / p.KW) % p.KH;
  let kx = k % p.KW;
  let oy = q / p.out_w + p.row0;
  let ox = q % p.out_w;
  // unsigned: a position above/left of the image wraps to a huge value and fails the bound
  let iy = oy * p.S + ky - p.pad_top;
  let ix = ox * p.S + kx - p.pad_left;
  var v = 0.0;
  if (iy < p.H && ix < p.W) { v = x[c * p.sc + iy * p.sy + ix * p.sx]; }
  patches[e] = v;
}
