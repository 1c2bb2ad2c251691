// Softmax attention for GPU-class kernels (src/ops/attention.ts): the same result as
// attention.wgsl (scores, mask and causality from lib/attention_scores.wgsl), organised as
// flash attention for GPUs, where workgroup memory and barriers are cheap and private
// arrays must stay small enough to live in registers.
//
// A workgroup owns BQ query rows (r0 = BQ·wid.x ..) of one query head (wid.y) and walks
// its keys in tiles of BK:
//   1. stage the tile's keys in workgroup memory (the block's scale·q rows once, before
//      the first tile);
//   2. score tile S [BQ, BK]: invocation (row group rs, key lane kl) computes SR × SK
//      scores (rows rs + RGS·a, keys kl + KL·c) from the staged q and k, and each row's
//      max over its keys;
//   3. softmax step, ST = WG/BQ invocations per row: the row's new running max m from the
//      KL partial maxima, S → exp(S − m) in place, exp(m_old − m) published per row
//      (online softmax, f32); meanwhile the tile's values replace the keys;
//   4. value step: invocation (key group kg, row group ro, column lane cl) owns OR × OC
//      vec4 outputs (rows ro + RGO·a, head-dim vec4s cl + CL·c) and their Σ exp; it
//      rescales them and adds Σ_t P[row, t] v[t, col] over keys kg + KG·t. KG > 1 (few
//      rows: decoding) splits the keys of a tile as well; those partial sums are added
//      once, after the last tile.
// Private state per invocation is OR·OC vec4 + OR floats of output (≤ 16 vec4; D = 128
// with BQ = 32: 8 vec4) and SR·SK scores (≤ 16), all indexed by constant-trip loops, so a
// GPU compiler keeps them in registers. The head-dim loops (staging, the q·k step) run to
// the compile-time DV4 = ⌈D/4⌉, not to the uniform p.dv4 the CPU-class kernels use to keep
// lavapipe's compiles short: a GPU compiler unrolls them and divides by a constant.
// Staged q/k rows are padded to an odd number of
// vec4s (DP) and score rows to BK + 1 floats, so invocations reading different rows at
// the same column hit different banks. 4 barriers per tile.
//
// Two variants, picked by pickVariant() in src/ops/attention.ts for the GPU class:
//   flash  (Sq > 32: prefill): grid [⌈Sq/BQ⌉, Hq]; a workgroup reads all keys its rows
//          see (causal: up to its last row) and writes out = o / Σ exp (0 for a fully
//          blocked row). BQ × BK = 64 × 32, 32 × 32, 16 × 32 or 16 × 16 — the largest
//          that fits maxComputeWorkgroupStorageSize (48 KiB on NVIDIA: 64 × 32 up to
//          D = 88, 32 × 32 for D = 128; 32 KiB on lavapipe: 32 × 32 for D = 64).
//   decode (SPLIT, Sq ≤ 32: generation, the Q-Former's queries): pass 1 of flash-decoding.
//          grid [⌈Sq/BQ⌉, Hq, chunks]; chunk z takes keys [z·L, (z+1)·L), L = ⌈Skv/chunks⌉
//          (possibly none), and writes its unnormalised partial state — o and (m, Σ exp) —
//          to part_o / part_ml; attention_decode_merge.wgsl (pass 2) combines the chunks.
//          BQ = 1 (WG = BK = 64), 8 (BK = 64) or 32 (BK = 32) rows, so one query row
//          does not pay for 64.
//
// Not yet timed on a GPU. Measured on lavapipe (2 shared cores, Mesa 25, tiles for its
// 32 KiB; GFLOP/s = 4·pairs·Hq·D / median time; the CPU-class variant in the same run, as
// this host ran 'rows' ~5× slower than when attention.wgsl's header was measured) — slower
// than the CPU-class kernels there, as expected (each barrier switches over every
// invocation, and workgroup memory costs as much as a storage load):
//   CLIP-L 577×577 / 600×600, 16 heads, D=64:  flash 32×32  1.07 / 1.14   rows R=2 1.53 / 1.58
//   LLaMA prefill 600, 32 heads, D=128, causal: flash 16×32  0.91          rows R=2 1.31
//   decode 1×600, 32 heads, D=128:              decode 1×32, 16 chunks 0.10 (97 ms), split 0.74
//                                               (flash forced: 0.05 — 63 of 64 rows idle)
// Pipelines compile in 2–20 s each on lavapipe (cached by Mesa afterwards).
//
// defines: D, ROWS (= 1, for the scores library), VEC4, CAUSAL, MASK, SPLIT; BQ, BK, WG;
// KL, SR, SK (score step); CL, OC, KG, OR (value step) — src/ops/attention.ts derives them.
#include "lib/attention_scores.wgsl"
#include "lib/attention_values.wgsl"

const BQ: u32 = $BQu;             // query rows per workgroup
const BK: u32 = $BKu;             // keys per tile
const WG: u32 = $WGu;             // invocations per workgroup
const KL: u32 = $KLu;             // score step: key lanes
const SR: u32 = $SRu;             // score step: rows per invocation
const SK: u32 = $SKu;             // score step: keys per invocation
const RGS: u32 = WG / KL;         // score step: row groups (RGS·SR = BQ, KL·SK = BK)
const CL: u32 = $CLu;             // value step: column lanes
const OC: u32 = $OCu;             // value step: head-dim vec4s per invocation
const KG: u32 = $KGu;             // value step: key groups
const OR: u32 = $ORu;             // value step: rows per invocation
const RGO: u32 = WG / (CL * KG);  // value step: row groups (RGO·OR = BQ)
const ST: u32 = WG / BQ;          // softmax step: invocations per row
const DP: u32 = DV4 | 1u;         // row stride of staged q/k/v (vec4s, odd)
const BKP: u32 = BK + 1u;         // row stride of the score tile

var<workgroup> qs: array<vec4<f32>, BQ * DP>;                 // scale · q of the block's rows
var<workgroup> kv: array<vec4<f32>, max(BK * DP, WG * OC)>;   // the tile's keys, then its values; at the end the key groups' outputs
var<workgroup> ps: array<f32, max(BQ * BKP, KG * BQ)>;        // scores, then exp(s − m); at the end the key groups' Σ exp
var<workgroup> pmax: array<f32, BQ * KL>;                     // per row, each key lane's max score in the tile
var<workgroup> rescale: array<f32, BQ>;                       // per row, exp(m_old − m) of this tile
#if SPLIT
var<workgroup> mrow: array<f32, BQ>;                          // per row, the chunk's max score
@group(0) @binding(6) var<storage, read_write> part_o: array<vec4<f32>>;   // [Sq, Hq, chunks, DV4]: Σ exp(s − m) v
@group(0) @binding(7) var<storage, read_write> part_ml: array<vec2<f32>>;  // [Sq, Hq, chunks]: (m, Σ exp(s − m))
#endif

// kv[t, :] = key (or value) row j0 + t of kv head g, t < BK; rows past je repeat row
// je − 1, whose scores are blocked (so nothing past kvLen is read).
fn stage(values: bool, g: u32, j0: u32, je: u32, lid: u32) {
  for (var t = lid; t < BK * DV4; t += WG) {
    let key = t / DV4;
    let i = t % DV4;
    let base = head_base(min(j0 + key, je - 1u), p.Hkv, g);
    if (values) {
      kv[key * DP + i] = v4(base, i);
    } else {
      kv[key * DP + i] = k4(base, i);
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wid.x * BQ;
  let h = wid.y;
  let g = kv_head(h);
  var je = p.Skv;  // keys [jb, je) of this workgroup
#if CAUSAL
  je = min(je, p.qPos0 + min(r0 + BQ, p.Sq));  // the last row's position + 1
#endif
  var jb = 0u;
#if SPLIT
  let chunk = (p.Skv + nwg.z - 1u) / nwg.z;
  je = min(je, (wid.z + 1u) * chunk);
  jb = min(wid.z * chunk, je);
#endif
  for (var t = lid; t < BQ * DV4; t += WG) {
    let r = t / DV4;
    let i = t % DV4;
    qs[r * DP + i] = q4(head_base(min(r0 + r, p.Sq - 1u), p.Hq, h), i) * p.scale;  // rows past Sq repeat Sq − 1, not stored
  }
  let kl = lid % KL;  // score step
  let rs = lid / KL;
  let sr = lid / ST;  // softmax step
  let su = lid % ST;
  let cl = lid % CL;  // value step
  let ro = (lid / CL) % RGO;
  let kg = lid / (CL * RGO);
  var m_run = NEG_BIG;  // softmax step: running max of row sr
  var o = array<array<vec4<f32>, OC>, OR>();
  var l = array<f32, OR>();

  for (var j0 = jb; j0 < je; j0 += BK) {
    stage(false, g, j0, je, lid);
    workgroupBarrier();
    var s = array<array<f32, SK>, SR>();  // zeroed explicitly (lavapipe keeps loop-local arrays otherwise)
    for (var i = 0u; i < DV4; i++) {
      var qi: array<vec4<f32>, SR>;
      for (var a = 0u; a < SR; a++) {
        qi[a] = qs[(rs + RGS * a) * DP + i];
      }
      for (var c = 0u; c < SK; c++) {
        let kk = kv[(kl + KL * c) * DP + i];
        for (var a = 0u; a < SR; a++) {
          s[a][c] += dot(qi[a], kk);
        }
      }
    }
    for (var a = 0u; a < SR; a++) {
      let r = rs + RGS * a;
      let row = min(r0 + r, p.Sq - 1u);
      var mx = NEG_BIG;
      for (var c = 0u; c < SK; c++) {
        let key = kl + KL * c;
        let x = select(finish_score(row, min(j0 + key, p.Skv - 1u), s[a][c]), NEG_BIG, j0 + key >= je);
        ps[r * BKP + key] = x;
        mx = max(mx, x);
      }
      pmax[r * KL + kl] = mx;
    }
    workgroupBarrier();
    var tmax = NEG_BIG;
    for (var t = 0u; t < KL; t++) {
      tmax = max(tmax, pmax[sr * KL + t]);
    }
    let mn = max(m_run, tmax);
    for (var key = su; key < BK; key += ST) {
      ps[sr * BKP + key] = weight(ps[sr * BKP + key], mn);
    }
    if (su == 0u) {
      rescale[sr] = exp(m_run - mn);
    }
    m_run = mn;
    stage(true, g, j0, je, lid);
    workgroupBarrier();
    for (var a = 0u; a < OR; a++) {
      let c = rescale[ro + RGO * a];
      l[a] *= c;
      for (var b = 0u; b < OC; b++) {
        o[a][b] *= c;
      }
    }
    for (var t = kg; t < BK; t += KG) {
      var vv: array<vec4<f32>, OC>;
      for (var b = 0u; b < OC; b++) {
        vv[b] = kv[t * DP + min(cl + CL * b, DV4 - 1u)];  // columns past DV4 are computed, not stored
      }
      for (var a = 0u; a < OR; a++) {
        let w = ps[(ro + RGO * a) * BKP + t];
        l[a] += w;
        for (var b = 0u; b < OC; b++) {
          o[a][b] = fma(vec4<f32>(w), vv[b], o[a][b]);
        }
      }
    }
    workgroupBarrier();
  }

  if (KG > 1u) {  // add the key groups' partial sums into key group 0
    for (var a = 0u; a < OR; a++) {
      let r = ro + RGO * a;
      for (var b = 0u; b < OC; b++) {
        kv[(kg * BQ + r) * CL * OC + cl + CL * b] = o[a][b];
      }
      if (cl == 0u) {
        ps[kg * BQ + r] = l[a];
      }
    }
    workgroupBarrier();
    if (kg == 0u) {
      for (var a = 0u; a < OR; a++) {
        let r = ro + RGO * a;
        for (var x = 1u; x < KG; x++) {
          l[a] += ps[x * BQ + r];
          for (var b = 0u; b < OC; b++) {
            o[a][b] += kv[(x * BQ + r) * CL * OC + cl + CL * b];
          }
        }
      }
    }
  }
#if SPLIT
  if (su == 0u) {
    mrow[sr] = m_run;
  }
  workgroupBarrier();
#endif
  if (kg != 0u) {
    return;
  }
  for (var a = 0u; a < OR; a++) {
    let r = ro + RGO * a;
    let row = r0 + r;
    if (row < p.Sq) {
#if SPLIT
      let at = (row * p.Hq + h) * nwg.z + wid.z;
      for (var b = 0u; b < OC; b++) {
        if (cl + CL * b < DV4) {
          part_o[at * DV4 + cl + CL * b] = o[a][b];
        }
      }
      if (cl == 0u) {
        part_ml[at] = vec2<f32>(mrow[r], l[a]);
      }
#else
      let w = select(0.0, 1.0 / l[a], l[a] > 0.0);  // 0 for a fully blocked row
      for (var b = 0u; b < OC; b++) {
        if (cl + CL * b < DV4) {
          store4(row, h, cl + CL * b, o[a][b] * w);
        }
      }
#endif
    }
  }
}
