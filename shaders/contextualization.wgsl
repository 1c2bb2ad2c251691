// Contextualization of two token sets (paper eq. 1 and its intra-modal version) in
// O((m + n) d), from the sums of unit vectors of each set:
//
//   U_img = Σ_{i ∈ img} h_i / ‖h_i‖      U_txt = Σ_{j ∈ txt} h_j / ‖h_j‖      (f32 [d] each)
//   inter      = (U_img · U_txt) / (m n)           = mean over (i, j) of cos(h_i, h_j)
//   intra_img  = (‖U_img‖² − m) / (m (m − 1))      = mean over i ≠ i' in img of cos
//   intra_txt  = (‖U_txt‖² − n) / (n (n − 1))
//
// m, n count the rows of each set with a non-zero norm: a zero row (Σ h² == 0 in f32) has
// no direction, so it is skipped and not counted. A scalar whose count is too small
// (inter: m or n = 0; intra: fewer than 2 rows) is NaN; callers report it as null.
//
// Layout (elements): h [rows, d] f32; idx [m_all + n_all] u32 = the image set's row
// indices, then the text set's (any order, any rows: the text set skips the image span
// and may skip BOS); result [.., width] f32, this call writing row `out_at / width`:
// (inter, intra_img, intra_txt[, m, n]) — width 5 adds the counts actually used.
//
// Three stages, one compiled variant each (define STAGE_NORMS / STAGE_SUMS / STAGE_SCALARS),
// so only tiny buffers leave the GPU:
//   NORMS    inv[k] = 1/‖h[idx[k]]‖ (0 for a zero row).   One workgroup per set element.
//   SUMS     part[s, c, col] = Σ_{k in chunk c of set s} h[idx[k], col] · inv[k]:
//            the set sums in column-parallel partials of `chunk` rows, so a 600-row,
//            d = 4096 input spreads over (d / WG) × chunks × 2 workgroups and each
//            invocation reads `chunk` rows of one column (adjacent invocations: adjacent
//            columns). No float atomics in WGSL: chunks are summed by the next stage.
//   SCALARS  one workgroup: U = Σ_c part, the three dot products, the counts, the scalars.
// All accumulation in f32 (the test bounds the error against an f64 pairwise reference).
#include "lib/grid.wgsl"

struct Params {
  d: u32,       // features per row of h (elements)
  m: u32,       // image-set size (entries of idx, zero rows included)
  n: u32,       // text-set size (entries of idx after the image set)
  chunk: u32,   // SUMS: set rows per partial sum
  chunks: u32,  // partial sums per set: ceil(max(m, n) / chunk)
  out_at: u32,  // SCALARS: element offset of this call's row of out
  width: u32,   // SCALARS: 3 (scalars) or 5 (scalars, then the counts m and n used)
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64u; // NORMS and SCALARS: a power of two (lib/reduce.wgsl)

#if STAGE_NORMS
#include "lib/reduce.wgsl"
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> inv: array<f32>;  // [m + n]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = workgroup_index(wid, nwg);
  if (k >= p.m + p.n) { return; } // the same for the whole workgroup
  let base = idx[k] * p.d;
  var q = 0.0;
  for (var i = lid; i < p.d; i += WG) {
    let v = h[base + i];
    q += v * v;
  }
  let s = wg_sum(q, lid);
  if (lid == 0u) {
    inv[k] = select(0.0, 1.0 / sqrt(s), s > 0.0);
  }
}
#endif

#if STAGE_SUMS
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> inv: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;  // [2, chunks, d]

override WG_SUM: u32 = 64u; // columns per workgroup

// workgroups: (ceil(d / WG_SUM), chunks, 2 sets)
@compute @workgroup_size(WG_SUM)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  if (col >= p.d) { return; }
  let c = gid.y;
  let which = gid.z;
  let first = select(0u, p.m, which == 1u);  // the set's entries are idx[first .. first + size)
  let size = select(p.m, p.n, which == 1u);
  let k0 = min(c * p.chunk, size);
  let k1 = min(k0 + p.chunk, size);
  var acc = 0.0;
  for (var k = first + k0; k < first + k1; k++) {
    acc += h[idx[k] * p.d + col] * inv[k];
  }
  part[(which * p.chunks + c) * p.d + col] = acc; // 0 for chunks past the set's end
}
#endif

#if STAGE_SCALARS
#include "lib/reduce.wgsl"
@group(0) @binding(3) var<storage, read> inv: array<f32>;
@group(0) @binding(4) var<storage, read> part: array<f32>;
// f32 values stored as their bits, so "too few rows" can be a NaN: WGSL has no NaN constant.
@group(0) @binding(5) var<storage, read_write> result: array<u32>;  // [.., width] f32

const NAN_BITS: u32 = 0x7fc00000u;

fn put(i: u32, v: f32, defined: bool) {
  result[p.out_at + i] = select(NAN_BITS, bitcast<u32>(v), defined);
}

// Exactly one workgroup.
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var uu = 0.0; // U_img · U_img
  var tt = 0.0; // U_txt · U_txt
  var ut = 0.0; // U_img · U_txt
  let txt = p.chunks * p.d;
  for (var col = lid; col < p.d; col += WG) {
    var u = 0.0;
    var t = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
      u += part[c * p.d + col];
      t += part[txt + c * p.d + col];
    }
    uu += u * u;
    tt += t * t;
    ut += u * t;
  }
  var cm = 0.0;
  var cn = 0.0;
  for (var k = lid; k < p.m + p.n; k += WG) {
    let used = select(0.0, 1.0, inv[k] > 0.0);
    if (k < p.m) { cm += used; } else { cn += used; }
  }
  uu = wg_sum(uu, lid);
  tt = wg_sum(tt, lid);
  ut = wg_sum(ut, lid);
  let m = wg_sum(cm, lid); // exact: integers far below 2^24
  let n = wg_sum(cn, lid);
  if (lid == 0u) {
    put(0u, ut / max(m * n, 1.0), m > 0.0 && n > 0.0);
    put(1u, (uu - m) / max(m * (m - 1.0), 1.0), m > 1.0);
    put(2u, (tt - n) / max(n * (n - 1.0), 1.0), n > 1.0);
    if (p.width == 5u) {
      put(3u, m, true);
      put(4u, n, true);
    }
  }
}
#endif
