// Histogram of |cos| over every (image row, text row) pair of one hidden state, streamed
// tile by tile: no pair matrix is ever stored (the narrow-gate study's modality separation).
//
//   h [rows, d] f32; idx [m + n] u32 = the image set's row indices, then the text set's;
//   inv [m + n] f32 = 1/‖h[idx[k]]‖ (0 for a zero row: contextualization.wgsl's NORMS stage);
//   hist [.., BINS] u32, this call adding into the BINS counters from element `out_at`.
//
// |cos| ∈ [0, 1] falls in bin min(floor(|cos| · BINS), BINS − 1). A pair with a zero row has
// no cosine and is not counted (the caller counts the pairs it expects).
//
// Workgroup: a TILE × TILE block of pairs per step (image rows × text rows), the dot
// products accumulated through TILE-column slices of both sets in workgroup memory. The
// workgroups stride over the blocks (their number is capped by the caller), adding into a
// workgroup-local histogram that is flushed once, so the global atomics are one per
// non-empty bin per workgroup, not one per pair.
#include "lib/grid.wgsl"

struct Params {
  d: u32,       // features per row of h
  m: u32,       // image-set size
  n: u32,       // text-set size
  out_at: u32,  // element offset of this call's histogram in hist
}

const TILE: u32 = $TILE;
const BINS: u32 = $BINS;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> inv: array<f32>;
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>;

var<workgroup> local_hist: array<atomic<u32>, BINS>;
var<workgroup> a_tile: array<array<f32, TILE>, TILE>; // [image row][column]
var<workgroup> b_tile: array<array<f32, TILE>, TILE>; // [text row][column]

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  for (var b = li; b < BINS; b += TILE * TILE) {
    atomicStore(&local_hist[b], 0u);
  }
  workgroupBarrier();

  let tiles_i = (p.m + TILE - 1u) / TILE;
  let tiles_j = (p.n + TILE - 1u) / TILE;
  let stride = nwg.x * nwg.y;
  // uniform loop: every invocation of the workgroup takes every step (barriers inside)
  for (var t = workgroup_index(wid, nwg); t < tiles_i * tiles_j; t += stride) {
    let i0 = (t / tiles_j) * TILE;
    let j0 = (t % tiles_j) * TILE;
    let i = i0 + lid.y; // this invocation's pair: image row i, text row j
    let j = j0 + lid.x;
    // the loaders: invocation (y, x) loads column x of image row i0 + y and of text row j0 + y
    let ai = i0 + lid.y;
    let bj = j0 + lid.y;
    var dot = 0.0;
    for (var c0 = 0u; c0 < p.d; c0 += TILE) {
      let c = c0 + lid.x;
      a_tile[lid.y][lid.x] = select(0.0, h[idx[min(ai, p.m - 1u)] * p.d + min(c, p.d - 1u)], ai < p.m && c < p.d);
      b_tile[lid.y][lid.x] = select(0.0, h[idx[p.m + min(bj, p.n - 1u)] * p.d + min(c, p.d - 1u)], bj < p.n && c < p.d);
      workgroupBarrier();
      for (var k = 0u; k < TILE; k++) {
        dot += a_tile[lid.y][k] * b_tile[lid.x][k];
      }
      workgroupBarrier();
    }
    if (i < p.m && j < p.n) {
      let w = inv[i] * inv[p.m + j];
      if (w > 0.0) {
        let c = min(abs(dot) * w, 1.0);
        atomicAdd(&local_hist[min(u32(c * f32(BINS)), BINS - 1u)], 1u);
      }
    }
  }
  workgroupBarrier();
  for (var b = li; b < BINS; b += TILE * TILE) {
    let v = atomicLoad(&local_hist[b]);
    if (v > 0u) {
      atomicAdd(&hist[p.out_at + b], v);
    }
  }
}
