// patches[q, k] = x[c, iy, ix] — unfolds an image into the rows of a convolution, so the
// conv becomes a matmul (src/ops/conv2d.ts, src/ops/patch-embed.ts):
//   q = (oy − row0) · out_w + ox        one output position (row-major over the chunk)
//   k = (c · KH + ky) · KW + kx         HF Conv2d weight [D, C, KH, KW] flattened
//   iy = oy · S + ky − pad_top, ix = ox · S + kx − pad_left; 0 outside the image (zero
//   padding: bottom/right padding is whatever the output size reaches past the edge)
// x is read through strides, so one kernel serves [C, H, W] pixels and [H, W, C]
// activations. Output rows row0 .. row0 + rows − 1 only (large images go in chunks).
// One invocation per (output position, channel, kernel row): its KW taps, KW consecutive
// elements of patches, so the index arithmetic (integer divisions, slow on CPUs) is paid
// once per KW elements.
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
  n: u32,        // invocations: rows · out_w · C · KH
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> patches: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroup_index(wid, nwg) * WG + lid; // ((q · C + c) · KH + ky)
  if (e >= p.n) { return; }
  let r = e / p.KH;
  let ky = e - r * p.KH;
  let q = r / p.C;
  let c = r - q * p.C;
  let oyc = q / p.out_w;
  let ox = q - oyc * p.out_w;
  // unsigned: a position above/left of the image wraps to a huge value and fails the bound
  let iy = (oyc + p.row0) * p.S + ky - p.pad_top;
  let inside = iy < p.H;
  let row = c * p.sc + iy * p.sy;
  let out = e * p.KW; // q · K + (c · KH + ky) · KW
  for (var kx = 0u; kx < p.KW; kx++) {
    let ix = ox * p.S + kx - p.pad_left;
    var v = 0.0;
    if (inside && ix < p.W) { v = x[row + ix * p.sx]; }
    patches[out + kx] = v;
  }
}
