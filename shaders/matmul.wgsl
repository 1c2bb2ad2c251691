#if SG
enable subgroups;
#endif
#if F16
enable f16;
#endif
// y[M, N] = act(x[M, K] · W[N, K]ᵀ + bias[N]) + residual[M, N]
// W in HF Linear layout [out, in], f32 or packed f16; accumulation in f32.
//
// Four variants here, one define each, and 'sgmat' in matmul_sgmat.wgsl, picked by src/ops/linear.ts (`pickMatmulKernel`).
// CPU-class kernels (src/gpu/adapter-class.ts) get `subgroup`; GPU-class kernels get
// `gemv` for M ≤ 8, and otherwise `sgmat` where the adapter has subgroup matrices and the
// variant passed its self-check (src/ops/matmul-check.ts), else `tiled`; `tile4x4` is the
// fallback for adapters without `subgroups` on the CPU class and for GPU adapters whose
// workgroup memory is too small.
//
//   tile4x4 (TILE4X4) — the portable kernel: an 8×8 workgroup, each invocation keeps a 4×4
//     block of y in registers and walks K four at a time. No workgroup memory, no barriers,
//     no optional features.
//
//   subgroup (SG) — for CPU adapters (lavapipe, SwiftShader) that have `subgroups`.
//     lavapipe (Mesa 25.0) runs the invocations of a subgroup as the 8 lanes of an AVX2
//     register. Arithmetic is one instruction for 8 lanes, but a storage-buffer load whose
//     address is not a compile-time/push constant is a loop over the lanes with a bounds
//     check per element: ~10–12 instructions per loaded float. Workgroup memory costs about
//     the same, textures are function calls, and `ffma` is lowered to mul + add. So the
//     kernel is shaped to load as few elements per multiply-add as registers allow:
//       - a workgroup = RM rows of y × 4·WG columns; its invocations share the rows and each
//         owns 4 columns (col = 4·WG·wid.y + WG·c + lid), accumulating RM×4 outputs (RM = 32:
//         128 accumulators, mostly spilled to the L1-resident stack, which costs far less
//         than a load). 32 is also where Mesa stops unrolling the row loops (40 runs 2.5×
//         slower);
//       - x is loaded once per group of G = min(subgroup size, 8) lanes: lane l loads
//         x[r, 4(k+l) .. 4(k+l)+3] for the RM rows, and each lane then reads the values it
//         needs from the lane that loaded them with subgroupShuffle (one vpermd);
//       - W is read as vec4s along K for the 4 columns, transposed (free in SoA form) so
//         one mat4×vec4 per row does the 16 multiply-adds of a 4-column × 4-k step.
//     That is 0.5 loaded floats per 8-lane multiply-add instead of 4 for tile4x4.
//     The op runs K in passes of 1024 (flags/k4_begin/k4_end below) so a workgroup's
//     slices of x and W stay in L2; that alone took cycles per FLOP down ~1.7× at K = 4096.
//     For M ≤ 8 (decoding) RM = M rounded up to a power of two, in one pass over K: W is
//     streamed once and hardly any padding rows are multiplied. That is already the fewest
//     loads an M = 1 product can make here (every W element once, x once per 8 lanes);
//     loading W at workgroup-uniform addresses and selecting each lane's column was 5×
//     slower on lavapipe (Mesa 25.0), whose uniform loads cost nearly what its gathers do.
//     Measured (perf stat, cycles per FLOP on one core of this EPYC, 600×1024×1024 f32):
//     subgroup ~15 GFLOP/s per core, tile4x4 ~4.3 (the kernel this file had before: 4.4);
//     OpenBLAS sgemm ~110 per core. `npm run bench -- --only matmul` times both on 2 cores.
//
//   gemv (GEMV) — GPUs, M ≤ 8 (decoding), where the matmul is a stream over W and tile4x4
//     would leave most of its 4×4 register tiles idle. A workgroup owns GC columns; GT
//     invocations share each column and walk its row of W along K (invocation t reads
//     vec4 t, t + GT, …), so consecutive invocations read consecutive 16 (f32) or 8 (f16)
//     bytes: coalesced. Each keeps M = ROWS partial sums (x is small and cache-resident),
//     then a tree over the GT invocations in workgroup memory adds them. Every invocation
//     holds real rows and, for K ≥ 4·GT, real k. No subgroup reduction: WGSL does not say
//     which invocations form a subgroup, so a column's GT invocations could not be mapped
//     onto one without `subgroup_id`; the tree is log2(GT) barriers once per workgroup.
//
//   tiled (TILED) — GPUs, M > 8 (prefill). A workgroup owns a TM × TN block of y (128 × 64,
//     or 64 × 64 when M ≤ 64 or when 128 rows would leave compute units idle: linear.ts's
//     tiledTile) and walks K in steps of TK: its invocations stage the TM × TK
//     slice of x and the TN × TK slice of W (f16 unpacked to f32) in workgroup memory,
//     k-major, then each of the (TN/8) × (TM/8) invocations multiplies 8 × 8 outputs out of
//     it: two vec4 of x and two vec4 of W per k give 64 multiply-adds. An invocation's rows
//     are two runs of 4, TM/2 apart (columns likewise, TN/2 apart), so neighbouring
//     invocations read neighbouring vec4s of the staged tiles. The next step's x and W are
//     fetched into registers before the current step's multiply-adds (double buffering
//     through registers). One pass over K (no K-split). Needs (TM + TN)·TK·4 bytes of
//     workgroup memory (12 KiB; the WebGPU minimum is 16).
//     With F16 (`shader-f16`, f16 weights: the op's 'tiled16') the W tile is kept as f16 in
//     workgroup memory — exact, since the weights are f16 — which halves its bytes and its
//     workgroup-memory traffic; x stays f32 and every multiply-add is f32, so the result is
//     the f32 kernel's to the last bit.
//
//   sgmat — GPUs with subgroup matrices, f16 weights: its own kernel, matmul_sgmat.wgsl
//     (several subgroups per workgroup, the hi/lo split of x that keeps the f32 contract,
//     split K); it shares this file's operand loads and epilogue (lib/matmul_load.wgsl,
//     lib/matmul_store.wgsl).
//
// All: rows past M and columns past N are clamped for loads and skipped for stores, so
// any M, N work; K % 4 != 0 (VEC4 off) reads scalars and zero-fills past K.
//
// ONE_PRODUCT (with F16; `--precision f16`, src/ops/precision.ts) — what HF's fp16 Linear
// computes: x and W are rounded to f16 as they are loaded (to nearest, ties to even, on the
// bits: shaders/lib/f16_round.wgsl says why not by a conversion), their products are exact in f32 and
// summed in f32, and the result is rounded to f16 after the bias, again after the activation
// and again after the residual add (whose input is rounded first), as torch rounds each op's
// fp16 output. K-split passes keep their partial sums in f32; only the last pass rounds.
// 'sgmat' then runs one product (f16(x)·Wᵀ) instead of the split's two; 'tiled' keeps its x
// tile in f16 too. Values past ±65504 become ±inf, as in torch.
//
// defines: one of SG, TILE4X4, GEMV, TILED; ONE_PRODUCT (needs F16); RM (SG), ROWS/GEMV_T/GEMV_C (GEMV),
//          TILE_M/TILE_N/TILE_K and F16 (TILED); VEC4, W_F16, W_BINDING (= 2), BIAS, RESIDUAL,
//          ACT (0 none, 1 gelu, 2 quick_gelu, 3 silu)
#include "lib/matmul_load.wgsl"
#include "lib/matmul_store.wgsl"

#if SG
// ---- subgroup: RM rows × 4 columns per invocation, x shared through shuffles ------------
override WG: u32 = 8u;  // invocations per workgroup (a multiple of 8)
const RM: u32 = $RMu;   // rows of y per workgroup (all its invocations share them)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32) {
  let G = min(sg_size, 8u);  // lanes that pool their x loads
  let lane = sg_lane % G;
  let first = sg_lane - lane;  // subgroup index of the group's lane 0
  let r0 = wid.x * RM;
  let c0 = wid.y * 4u * WG + lid;  // this invocation's columns: c0, c0 + WG, c0 + 2·WG, c0 + 3·WG
  let n0 = min(c0, p.N - 1u);
  let n1 = min(c0 + WG, p.N - 1u);
  let n2 = min(c0 + 2u * WG, p.N - 1u);
  let n3 = min(c0 + 3u * WG, p.N - 1u);
  let K4 = p.k4_end;
  var xs: array<vec4<f32>, RM>;   // lane l: x[r0 + r, 4(kc + l) ..]
  var acc: array<vec4<f32>, RM>;  // acc[r][c] = y[r0 + r, column c]
  for (var kc = p.k4_begin; kc < K4; kc += G) {
    let kx = min(kc + lane, K4 - 1u);
    for (var r = 0u; r < RM; r++) {
      xs[r] = x4(min(r0 + r, p.M - 1u), kx);
    }
    let nj = min(G, K4 - kc);  // the same for the whole subgroup
    for (var j = 0u; j < nj; j++) {
      let k = kc + j;
      // bt[i][c] = W[column c, 4k + i]
      let bt = transpose(mat4x4<f32>(w4(n0, k), w4(n1, k), w4(n2, k), w4(n3, k)));
      for (var r = 0u; r < RM; r++) {
        acc[r] += bt * subgroupShuffle(xs[r], first + j);
      }
    }
  }
  for (var r = 0u; r < RM; r++) {
    for (var c = 0u; c < 4u; c++) {
      store(r0 + r, c0 + c * WG, acc[r][c]);
    }
  }
}

#endif

#if TILE4X4
// ---- tile4x4: 4×4 outputs per invocation, 8×8 invocations per workgroup -----------------
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c0 = gid.x * 4u;
  let r0 = gid.y * 4u;
  if (c0 >= p.N || r0 >= p.M) { return; }
  let x0 = min(r0, p.M - 1u);
  let x1 = min(r0 + 1u, p.M - 1u);
  let x2 = min(r0 + 2u, p.M - 1u);
  let x3 = min(r0 + 3u, p.M - 1u);
  let w0 = min(c0, p.N - 1u);
  let w1 = min(c0 + 1u, p.N - 1u);
  let w2 = min(c0 + 2u, p.N - 1u);
  let w3 = min(c0 + 3u, p.N - 1u);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = p.k4_begin; k < p.k4_end; k++) {
    let bt = transpose(mat4x4<f32>(w4(w0, k), w4(w1, k), w4(w2, k), w4(w3, k)));
    a0 += bt * x4(x0, k);
    a1 += bt * x4(x1, k);
    a2 += bt * x4(x2, k);
    a3 += bt * x4(x3, k);
  }
  let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) {
      store(r0 + r, c0 + c, acc[r][c]);
    }
  }
}
#endif

#if GEMV
// ---- gemv: GC columns per workgroup, GT invocations per column along K, M = ROWS ≤ 8 ----
#include "lib/grid.wgsl"
const ROWS: u32 = $ROWSu;   // = M
const GT: u32 = $GEMV_Tu;   // invocations per column (a power of two)
const GC: u32 = $GEMV_Cu;   // columns per workgroup
const GW: u32 = GT * GC;    // workgroup size
var<workgroup> part: array<f32, ROWS * GW>;  // part[r·GW + lid]: row r's partial sum of invocation lid

@compute @workgroup_size(GW)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = lid % GT;
  let col = workgroup_index(wid, nwg) * GC + lid / GT;
  let n = min(col, p.N - 1u);
  var acc: array<f32, ROWS>;
  for (var k = p.k4_begin + t; k < p.k4_end; k += GT) {
    let wk = w4(n, k);
    for (var r = 0u; r < ROWS; r++) {
      acc[r] += dot(wk, x4(r, k));
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    part[r * GW + lid] = acc[r];
  }
  workgroupBarrier();
  for (var s = GT / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      for (var r = 0u; r < ROWS; r++) {
        part[r * GW + lid] += part[r * GW + lid + s];
      }
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    for (var r = 0u; r < ROWS; r++) {
      store(r, col, part[r * GW + lid]);
    }
  }
}
#endif

#if TILED
// ---- tiled: TM × TN of y per workgroup, x and W staged TK at a time in workgroup memory --
const TM: u32 = $TILE_Mu;  // rows of y per workgroup (a multiple of 8)
const TN: u32 = $TILE_Nu;  // columns of y per workgroup (a multiple of 8)
const TK: u32 = $TILE_Ku;  // k per staged step (a multiple of 4)
const WX: u32 = TN / 8u;   // invocations along columns
const WY: u32 = TM / 8u;   // invocations along rows
const WG: u32 = WX * WY;
const K4T: u32 = TK / 4u;  // vec4s along k per staged row
// vec4s of x and of W each invocation fetches per step (the op picks tiles that divide)
const XL: u32 = TM * K4T / WG;
const WL: u32 = TN * K4T / WG;
// k-major, so an invocation's 4 rows (columns) at one k are one vec4:
//   xs[k·TM/4 + r/4][r % 4] = x[r0 + r, k0 + k],  ws[k·TN/4 + c/4][c % 4] = W[c0 + c, k0 + k]
#if F16
alias wtile = vec4<f16>;
#else
alias wtile = vec4<f32>;
#endif
#if ONE_PRODUCT
alias xtile = vec4<f16>;  // x is f16-rounded as it is fetched: exact in f16
#else
alias xtile = vec4<f32>;
#endif
var<workgroup> xs: array<xtile, TK * TM / 4u>;
var<workgroup> ws: array<wtile, TK * TN / 4u>;

// The next step's vec4s, in registers: fx[i] = x[r0 + e / K4T, 4·(kt + e % K4T) ..] for
// e = lid + WG·i (fw alike, from W). k past K reads as zeros (the last step may overrun
// it); rows and columns past M and N are clamped.
var<private> fx: array<vec4<f32>, XL>;
var<private> fw: array<vec4<f32>, WL>;

fn fetch(r0: u32, c0: u32, kt: u32, lid: u32) {
  for (var i = 0u; i < XL; i++) {
    let e = lid + WG * i;
    let k4 = kt + e % K4T;
    fx[i] = select(vec4<f32>(0.0), x4(min(r0 + e / K4T, p.M - 1u), min(k4, p.k4_end - 1u)), k4 < p.k4_end);
  }
  for (var i = 0u; i < WL; i++) {
    let e = lid + WG * i;
    let k4 = kt + e % K4T;
    fw[i] = select(vec4<f32>(0.0), w4(min(c0 + e / K4T, p.N - 1u), min(k4, p.k4_end - 1u)), k4 < p.k4_end);
  }
}

// writes the fetched step into the tiles, transposed to k-major
fn stage(lid: u32) {
  for (var i = 0u; i < XL; i++) {
    let e = lid + WG * i;
    let r = e / K4T;
    let b = 4u * (e % K4T) * (TM / 4u) + r / 4u;
    let v = xtile(fx[i]);
    xs[b][r % 4u] = v.x;
    xs[b + TM / 4u][r % 4u] = v.y;
    xs[b + TM / 2u][r % 4u] = v.z;
    xs[b + 3u * TM / 4u][r % 4u] = v.w;
  }
  for (var i = 0u; i < WL; i++) {
    let e = lid + WG * i;
    let c = e / K4T;
    let b = 4u * (e % K4T) * (TN / 4u) + c / 4u;
    let h = wtile(fw[i]);  // f16 weights: exact
    ws[b][c % 4u] = h.x;
    ws[b + TN / 4u][c % 4u] = h.y;
    ws[b + TN / 2u][c % 4u] = h.z;
    ws[b + 3u * TN / 4u][c % 4u] = h.w;
  }
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wid.y * TM;
  let c0 = wid.x * TN;
  // acc[8h + 2i + g][j] = y[r0 + h·TM/2 + 4·l.y + i, c0 + g·TN/2 + 4·l.x + j]
  var acc: array<vec4<f32>, 16>;
  // Double-buffered through registers: the next step's global loads are issued before this
  // step's multiply-adds, so their latency hides behind them (two tile sets in workgroup
  // memory would need 24 KiB, past the 16 KiB every adapter has).
  fetch(r0, c0, p.k4_begin, lid);
  for (var kt = p.k4_begin; kt < p.k4_end; kt += K4T) {
    stage(lid);
    workgroupBarrier();
    if (kt + K4T < p.k4_end) {
      fetch(r0, c0, kt + K4T, lid);
    }
    for (var k = 0u; k < TK; k++) {
      let a = array<vec4<f32>, 2>(vec4<f32>(xs[k * (TM / 4u) + l.y]), vec4<f32>(xs[k * (TM / 4u) + TM / 8u + l.y]));
      let b0 = vec4<f32>(ws[k * (TN / 4u) + l.x]);
      let b1 = vec4<f32>(ws[k * (TN / 4u) + TN / 8u + l.x]);
      for (var h = 0u; h < 2u; h++) {
        for (var i = 0u; i < 4u; i++) {
          acc[8u * h + 2u * i] += a[h][i] * b0;
          acc[8u * h + 2u * i + 1u] += a[h][i] * b1;
        }
      }
    }
    workgroupBarrier();  // the next step overwrites the tiles
  }
  for (var h = 0u; h < 2u; h++) {
    for (var i = 0u; i < 4u; i++) {
      for (var g = 0u; g < 2u; g++) {
        for (var j = 0u; j < 4u; j++) {
          store(r0 + h * (TM / 2u) + 4u * l.y + i, c0 + g * (TN / 2u) + 4u * l.x + j, acc[8u * h + 2u * i + g][j]);
        }
      }
    }
  }
}
#endif
