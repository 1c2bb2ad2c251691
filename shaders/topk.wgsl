// Per row of x [rows, V]: the K largest values with their column ids, and the row's
// max and Σ exp(x − max) so callers get softmax probabilities exp(v − max) / sum.
// Used for greedy decoding (K = 1) and LogitLens (top-k of every visual token).
//
// One workgroup per row. Each invocation scans a strided slice keeping its own top-K
// (insertion into a sorted private array) and an online max / sum; then invocation 0
// merges the WG partial lists from workgroup memory. Ties keep the smaller column id.
// Columns are offset by `col0` so a vocabulary split into parts can be merged on the host.

struct Params {
  rows: u32,  // rows of x
  V: u32,     // columns of x (vocabulary part size)
  col0: u32,  // id of column 0 (start of this vocabulary part)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> top_val: array<f32>;  // [rows, K]
@group(0) @binding(3) var<storage, read_write> top_id: array<u32>;   // [rows, K]
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;    // [rows, 2]: max, Σ exp(x − max)

const K = $K;
const WG_MAX = $WG_MAXu;  // the op's workgroup size: WG_MAX·K entries must fit 16 KiB (src/ops/topk.ts)
override WG: u32 = WG_MAX;
const NEG = -3.4028234e38;  // ≈ −FLT_MAX (the literal must round within f32 range)

var<workgroup> wval: array<f32, WG_MAX * K>;
var<workgroup> wid: array<u32, WG_MAX * K>;
var<workgroup> wmax: array<f32, WG_MAX>;
var<workgroup> wsum: array<f32, WG_MAX>;

// true if (v, i) ranks before (w, j)
fn before(v: f32, i: u32, w: f32, j: u32) -> bool {
  return v > w || (v == w && i < j);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; }  // uniform per workgroup
  var val: array<f32, K>;
  var id: array<u32, K>;
  for (var k = 0u; k < K; k++) { val[k] = NEG; id[k] = 0xffffffffu; }
  var m = NEG;
  var s = 0.0;
  let base = row * p.V;
  for (var c = t; c < p.V; c += WG) {
    let v = x[base + c];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
    let gid = c + p.col0;
    if (before(v, gid, val[K - 1u], id[K - 1u])) {
      var j = K - 1u;
      while (j > 0u && before(v, gid, val[j - 1u], id[j - 1u])) {
        val[j] = val[j - 1u];
        id[j] = id[j - 1u];
        j--;
      }
      val[j] = v;
      id[j] = gid;
    }
  }
  for (var k = 0u; k < K; k++) { wval[t * K + k] = val[k]; wid[t * K + k] = id[k]; }
  wmax[t] = m;
  wsum[t] = s;
  workgroupBarrier();
  if (t != 0u) { return; }
  var gm = NEG;
  for (var i = 0u; i < WG; i++) { gm = max(gm, wmax[i]); }
  var gs = 0.0;
  for (var i = 0u; i < WG; i++) {
    if (wsum[i] > 0.0) { gs += wsum[i] * exp(wmax[i] - gm); }
  }
  // K-way merge by repeated selection over the WG sorted lists (heads in `head`)
  var head: array<u32, WG_MAX>;
  for (var i = 0u; i < WG; i++) { head[i] = 0u; }
  for (var k = 0u; k < K; k++) {
    var best = 0u;
    var bv = NEG;
    var bi = 0xffffffffu;
    for (var i = 0u; i < WG; i++) {
      if (head[i] >= K) { continue; }
      let v = wval[i * K + head[i]];
      let j = wid[i * K + head[i]];
      if (before(v, j, bv, bi)) { best = i; bv = v; bi = j; }
    }
    top_val[row * K + k] = bv;
    top_id[row * K + k] = bi;
    head[best]++;
  }
  stats[row * 2u] = gm;
  stats[row * 2u + 1u] = gs;
}
