#if !EMULATE
enable subgroups;
enable $SGM_EXT;
#endif
enable f16;
// 'sgmat': y[M, N] = act(x[M, K] · W[N, K]ᵀ + bias) + residual on subgroup matrices (tensor
// cores, matrix cores, simdgroup matrices), f16 W, f32 accumulation. src/ops/matmul-sgmat.ts
// derives the defines from the adapter's configuration (SGM_M × SGM_N × SGM_K, subgroup
// size) and the device's limits, and picks the split of K.
//
// Structure (the one llama.cpp's WebGPU backend uses):
//   - a workgroup owns a TM × TN block of y and is SG_M × SG_N subgroups; subgroup (i, j)
//     owns a (MAT_M·SGM_M) × (MAT_N·SGM_N) sub-block as MAT_M × MAT_N result matrices, kept
//     in registers for the whole K loop (their indices are constants: #unroll). On NVIDIA
//     (16×16×16, 32 lanes): 2 × 4 subgroups × 4 × 2 matrices = 128 × 128, 256 invocations,
//     64 accumulator floats per lane;
//   - K is walked TK = 32 at a time. Every invocation fetches its share of the step's x and
//     W tiles as vec4s (x f32, W four packed halves), then writes them to workgroup memory as
//     f16, row-major with k fastest and a row stride of TK + 8 halves: a matrix load reads
//     8 rows × 16 bytes per phase, and with an 80-byte stride those land in distinct banks;
//   - double-buffered K steps: the next step's tiles are fetched into registers before this
//     step's multiply-adds (the global loads' latency hides behind them), and with STAGES = 2
//     (when the workgroup memory has room for two tile sets) written to the other set right
//     after, so one barrier per step; with STAGES = 1 two;
//   - the f32-exact default splits x into hi = f16(x) and lo = f16(x − hi) and multiplies
//     both by the f16 W (2⁻²²·|x| per element, the f32 contract of the other variants; the
//     derivation is in src/ops/matmul-check.ts). ONE_PRODUCT (`--precision f16`) stages x
//     once, f16-rounded by the loader, and runs one product;
//   - split K (wid.z of nwg.z): a workgroup sums whole steps of its chunk of K and writes raw
//     partial sums to slice z of y ([splits, M, N]); matmul_splitk.wgsl adds the slices and
//     applies the epilogue. One split: the epilogue runs here;
//   - the epilogue: each result matrix goes through the subgroup's S×S f32 slot in workgroup
//     memory, then its lanes store it element by element (bias, activation, residual).
// Rows past M and columns past N are clamped for loads and dropped on store; k past the
// chunk's end reads as zeros, so any M, N, K work.
//
// EMULATE: the same kernel with its four subgroup-matrix primitives written as plain loops
// (the functions below), for adapters without subgroup matrices: a logical subgroup is SG
// consecutive invocations, a result matrix is spread over its lanes (lane l holds elements
// l, l + SG, … in row-major order), and a left/right matrix is where it lies in the staged
// tiles (the kernel multiplies a loaded matrix before the next barrier, while the tile is
// unchanged, so reading the tile then gives what the load held). Everything else — tiles,
// staging, stages, splits, edges, epilogue — is this file's code in both forms, which is
// what lets lavapipe test it (test/kernels/matmul-sgmat.test.ts).
//
// defines: SGM_M, SGM_N, SGM_K (the matrix configuration), SG_SIZE, SG_M, SG_N, MAT_M, MAT_N,
//          TILE_K, STAGES, K_STEPS (= TILE_K / SGM_K), X_LOADS, W_LOADS (vec4s per
//          invocation per step), SGM_EXT, EMULATE, ONE_PRODUCT; VEC4, W_F16 (= true),
//          W_BINDING, BIAS, RESIDUAL, ACT as in matmul.wgsl
#include "lib/matmul_load.wgsl"
#include "lib/matmul_store.wgsl"

const SM: u32 = $SGM_Mu;        // one matrix: SM rows × SN columns of y, SK of k
const SN: u32 = $SGM_Nu;
const SK: u32 = $SGM_Ku;
const SG: u32 = $SG_SIZEu;      // invocations per subgroup
const SG_M: u32 = $SG_Mu;       // subgroups along rows and columns
const SG_N: u32 = $SG_Nu;
const MAT_M: u32 = $MAT_Mu;     // result matrices per subgroup along rows and columns
const MAT_N: u32 = $MAT_Nu;
const NSUB: u32 = SG_M * SG_N;
const WG: u32 = NSUB * SG;
const TM: u32 = SG_M * MAT_M * SM;  // rows of y per workgroup
const TN: u32 = SG_N * MAT_N * SN;  // columns of y per workgroup
const TK: u32 = $TILE_Ku;       // k per step (a multiple of SK and of 4)
const K4T: u32 = TK / 4u;
const RS: u32 = TK + 8u;        // row stride of the staged tiles (halves)
#if ONE_PRODUCT
const XT: u32 = 1u;             // x tiles per stage: f16(x)
#else
const XT: u32 = 2u;             // hi and lo
#endif
const W_OFF: u32 = XT * TM * RS;    // the W tile within a stage
const STAGE: u32 = (XT * TM + TN) * RS;
const STAGES: u32 = $STAGESu;
const XL: u32 = $X_LOADSu;      // ⌈TM·K4T / WG⌉
const WL: u32 = $W_LOADSu;      // ⌈TN·K4T / WG⌉

// stage s at s·STAGE: x hi [TM][RS], x lo [TM][RS] (not with ONE_PRODUCT), W [TN][RS]
var<workgroup> tiles: array<f16, STAGES * STAGE>;
var<workgroup> cs: array<f32, NSUB * SM * SN>;  // per subgroup, one result matrix on its way out

#if EMULATE
var<private> lane: u32;
struct left { base: u32, stride: u32 }
struct right { base: u32, stride: u32 }
const RQ: u32 = (SM * SN + SG - 1u) / SG;
struct result { v: array<f32, RQ> }

// n, in a form the compiler cannot fold (flags never has bit 31): the emulation's loops stay
// loops, since Mesa unrolling them inside the kernel's unrolled fragment loops takes lavapipe
// gigabytes to compile
fn opaque(n: u32) -> u32 {
  return select(n, 0u, (p.flags >> 31u) != 0u);
}

// row-major: element (i, k) at tiles[base + i·stride + k]
fn load_left(base: u32, stride: u32) -> left {
  return left(base, stride);
}
// column-major: element (k, j) at tiles[base + j·stride + k]
fn load_right(base: u32, stride: u32) -> right {
  return right(base, stride);
}
fn mma(a: left, b: right, c: result) -> result {
  var r = c;
  for (var q = 0u; q < opaque(RQ); q++) {
    let e = lane + SG * q;
    if (e < SM * SN) {
      let i = e / SN;
      let j = e % SN;
      var s = r.v[q];
      for (var k = 0u; k < opaque(SK); k++) {
        s += f32(tiles[a.base + i * a.stride + k]) * f32(tiles[b.base + j * b.stride + k]);  // exact in f32
      }
      r.v[q] = s;
    }
  }
  return r;
}
// row-major into cs
fn store_result(base: u32, c: result, stride: u32) {
  for (var q = 0u; q < opaque(RQ); q++) {
    let e = lane + SG * q;
    if (e < SM * SN) {
      cs[base + (e / SN) * stride + e % SN] = c.v[q];
    }
  }
}
#else
alias left = subgroup_matrix_left<f16, SK, SM>;      // <type, columns, rows>
alias right = subgroup_matrix_right<f16, SN, SK>;
alias result = subgroup_matrix_result<f32, SN, SM>;

fn load_left(base: u32, stride: u32) -> left {
  return subgroupMatrixLoad<left, row_major>(&tiles, base, stride);
}
// Wᵀ (k × n) is the W tile read column-major
fn load_right(base: u32, stride: u32) -> right {
  return subgroupMatrixLoad<right, col_major>(&tiles, base, stride);
}
fn mma(a: left, b: right, c: result) -> result {
  return subgroupMatrixMultiplyAccumulate(a, b, c);
}
fn store_result(base: u32, c: result, stride: u32) {
  subgroupMatrixStore<row_major>(&cs, base, c, stride);
}
#endif

// The step at k4 = kt of this workgroup's chunk [.., ke), in registers:
// fx[i] = x[r0 + e / K4T, 4·(kt + e % K4T) ..], fw[i] likewise from W, e = lid + WG·i.
var<private> fx: array<vec4<f32>, XL>;
var<private> fw: array<vec4<f16>, WL>;

fn fetch(r0: u32, c0: u32, kt: u32, ke: u32, lid: u32) {
#unroll I X_LOADS
  {
    let e = lid + WG * $Iu;
    let k4 = kt + e % K4T;
    fx[$I] = select(vec4<f32>(0.0), x4(min(r0 + e / K4T, p.M - 1u), min(k4, ke - 1u)), k4 < ke && e < TM * K4T);
  }
#endunroll
#unroll I W_LOADS
  {
    let e = lid + WG * $Iu;
    let k4 = kt + e % K4T;
    fw[$I] = vec4<f16>(select(vec4<f32>(0.0), w4(min(c0 + e / K4T, p.N - 1u), min(k4, ke - 1u)), k4 < ke && e < TN * K4T));  // f16 weights: exact
  }
#endunroll
}

// writes the fetched step into the stage at `base`
fn stage(base: u32, lid: u32) {
#unroll I X_LOADS
  {
    let e = lid + WG * $Iu;
    if (e < TM * K4T) {
      let at = base + (e / K4T) * RS + 4u * (e % K4T);
#if ONE_PRODUCT
      let hi = vec4<f16>(fx[$I]);
#else
      // hi = x rounded to f16's 11 significant bits with integer ops (exact in f16 in its
      // normal range), lo = f16(x − hi): a compiler may fold f32(f16(x)) into x — lavapipe
      // does — and an f16 round trip would leave lo zero
      let hx = bitcast<vec4<f32>>((bitcast<vec4<u32>>(fx[$I]) + vec4<u32>(0x1000u)) & vec4<u32>(0xffffe000u));
      let hi = vec4<f16>(hx);
#endif
      tiles[at] = hi.x;
      tiles[at + 1u] = hi.y;
      tiles[at + 2u] = hi.z;
      tiles[at + 3u] = hi.w;
#if !ONE_PRODUCT
      let lo = vec4<f16>(fx[$I] - hx);
      tiles[at + TM * RS] = lo.x;
      tiles[at + TM * RS + 1u] = lo.y;
      tiles[at + TM * RS + 2u] = lo.z;
      tiles[at + TM * RS + 3u] = lo.w;
#endif
    }
  }
#endunroll
#unroll I W_LOADS
  {
    let e = lid + WG * $Iu;
    if (e < TN * K4T) {
      let at = base + W_OFF + (e / K4T) * RS + 4u * (e % K4T);
      tiles[at] = fw[$I].x;
      tiles[at + 1u] = fw[$I].y;
      tiles[at + 2u] = fw[$I].z;
      tiles[at + 3u] = fw[$I].w;
    }
  }
#endunroll
}

// An output of this workgroup: through the epilogue with one split, else raw into slice z.
fn emit(z: u32, splits: u32, row: u32, col: u32, v: f32) {
  if (splits == 1u) {
    store(row, col, v);
  } else if (row < p.M && col < p.N) {
    y[(z * p.M + row) * p.N + col] = v;
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
#if EMULATE
        @builtin(local_invocation_index) lid: u32) {
  let sg = lid / SG;
  lane = lid % SG;
  let sg_lane = lane;
  let sg_size = SG;
#else
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg_id: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32) {
  // Subgroups narrower than SG (more of them than slots) repeat the last slot's work: the
  // same values to the same places. Wider ones cannot occur: SG is the adapter's largest.
  let sg = min(sg_id, NSUB - 1u);
#endif
  let r0 = wid.y * TM;
  let c0 = wid.x * TN;
  let rm = (sg / SG_N) * MAT_M * SM;  // this subgroup's block in the tile
  let cn = (sg % SG_N) * MAT_N * SN;
  // this workgroup's chunk of K: whole steps, the last chunk ragged (or empty)
  let chunk = ((p.k4_end - p.k4_begin + nwg.z - 1u) / nwg.z + K4T - 1u) / K4T * K4T;
  let kb = min(p.k4_begin + wid.z * chunk, p.k4_end);
  let ke = min(kb + chunk, p.k4_end);
  let steps = (ke - kb + K4T - 1u) / K4T;

  var acc: array<result, MAT_M * MAT_N>;  // zero
  if (steps > 0u) {
    fetch(r0, c0, kb, ke, lid);
    stage(0u, lid);
  }
  workgroupBarrier();
  for (var s = 0u; s < steps; s++) {
    let base = (s % STAGES) * STAGE;
    let more = s + 1u < steps;
    if (more) {
      fetch(r0, c0, kb + (s + 1u) * K4T, ke, lid);
    }
#unroll KK K_STEPS
    {
      let kk = base + $KKu * SK;
#unroll J MAT_N
      let b$J = load_right(kk + W_OFF + (cn + $Ju * SN) * RS, RS);
#endunroll
#unroll I MAT_M
      {
        let ah = load_left(kk + (rm + $Iu * SM) * RS, RS);
#unroll J MAT_N
        acc[$I * MAT_N + $J] = mma(ah, b$J, acc[$I * MAT_N + $J]);
#endunroll
#if !ONE_PRODUCT
        let al = load_left(kk + TM * RS + (rm + $Iu * SM) * RS, RS);
#unroll J MAT_N
        acc[$I * MAT_N + $J] = mma(al, b$J, acc[$I * MAT_N + $J]);
#endunroll
#endif
      }
#endunroll
    }
#endunroll
    if (STAGES == 1u) {
      workgroupBarrier();  // everyone is done reading the one stage
    }
    if (more) {
      stage(((s + 1u) % STAGES) * STAGE, lid);
    }
    workgroupBarrier();
  }

  let slot = sg * SM * SN;
#unroll I MAT_M
#unroll J MAT_N
  store_result(slot, acc[$I * MAT_N + $J], SN);
  workgroupBarrier();
  for (var e = sg_lane; e < SM * SN; e += sg_size) {
    emit(wid.z, nwg.z, r0 + rm + $Iu * SM + e / SN, c0 + cn + $Ju * SN + e % SN, cs[slot + e]);
  }
  workgroupBarrier();
#endunroll
#endunroll
}
