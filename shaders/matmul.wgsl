#if SG
enable subgroups;
#endif
// y[M, N] = act(x[M, K] · W[N, K]ᵀ + bias[N]) + residual[M, N]
// W in HF Linear layout [out, in], f32 or packed f16; accumulation in f32.
//
// Two variants, picked by src/ops/linear.ts (`pickMatmulKernel`):
//
//   tile4x4 (SG off) — the portable kernel: an 8×8 workgroup, each invocation keeps a 4×4
//     block of y in registers and walks K four at a time. No workgroup memory, no barriers,
//     no optional features. Picked on GPUs and on any adapter without `subgroups`.
//
//   subgroup (SG on) — for CPU adapters (lavapipe, SwiftShader) that have `subgroups`.
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
//     RM = 4 for M ≤ 8 (decoding), where 32 rows would be mostly padding.
//     Measured (perf stat, cycles per FLOP on one core of this EPYC, 600×1024×1024 f32):
//     subgroup ~15 GFLOP/s per core, tile4x4 ~4.3 (the kernel this file had before: 4.4);
//     OpenBLAS sgemm ~110 per core. `npm run bench -- --only matmul` times both on 2 cores.
//
// Both: rows past M and columns past N are clamped for loads and skipped for stores, so
// any M, N work; K % 4 != 0 (VEC4 off) reads scalars and zero-fills past K.
//
// defines: SG, RM (SG only), VEC4, W_F16, W_BINDING (= 2), BIAS, RESIDUAL,
//          ACT (0 none, 1 gelu, 2 quick_gelu, 3 silu)
#include "lib/activations.wgsl"

struct Params {
  M: u32,      // rows of x and y (tokens)
  N: u32,      // out features
  K: u32,      // in features
  k4_begin: u32,  // this pass sums k in [4·k4_begin, 4·k4_end) (vec4 steps; K-split passes)
  k4_end: u32,
  flags: u32,  // bit 0: add to y (not the first pass); bit 1: apply the epilogue (last pass)
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
#include "lib/weights.wgsl"
#if BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#if RESIDUAL
@group(0) @binding(4) var<storage, read> residual: array<f32>;
#endif
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// x[row, 4·k4 .. 4·k4 + 3] and W[col, 4·k4 .. 4·k4 + 3]; row < M and col < N.
#if VEC4
fn x4(row: u32, k4: u32) -> vec4<f32> {
  return x[row * (p.K >> 2u) + k4];
}
fn w4(col: u32, k4: u32) -> vec4<f32> {
  return w_vec4(col * p.K + 4u * k4);
}
#else
fn x4(row: u32, k4: u32) -> vec4<f32> {
  let k = 4u * k4;
  let i = row * p.K + k;
  let last = row * p.K + p.K - 1u;
  return vec4<f32>(x[i], select(0.0, x[min(i + 1u, last)], k + 1u < p.K),
                   select(0.0, x[min(i + 2u, last)], k + 2u < p.K), select(0.0, x[min(i + 3u, last)], k + 3u < p.K));
}
fn w4(col: u32, k4: u32) -> vec4<f32> {
  let k = 4u * k4;
  let i = col * p.K + k;
  let last = col * p.K + p.K - 1u;
  return vec4<f32>(w_at(i), select(0.0, w_at(min(i + 1u, last)), k + 1u < p.K),
                   select(0.0, w_at(min(i + 2u, last)), k + 2u < p.K), select(0.0, w_at(min(i + 3u, last)), k + 3u < p.K));
}
#endif

// Adds this pass's partial sum to y (flags bit 0) and, on the last pass (bit 1), applies
// the fused epilogue: bias, activation, residual. Out-of-range outputs are dropped.
fn store(row: u32, col: u32, v: f32) {
  if (row >= p.M || col >= p.N) { return; }
  let i = row * p.N + col;
  var o = v;
  if ((p.flags & 1u) != 0u) { o += y[i]; }
  if ((p.flags & 2u) != 0u) {
#if BIAS
    o += bias[col];
#endif
    if ($ACT == 1) { o = gelu(o); }
    if ($ACT == 2) { o = quick_gelu(o); }
    if ($ACT == 3) { o = silu(o); }
#if RESIDUAL
    o += residual[i];
#endif
  }
  y[i] = o;
}

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

#else
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
