// Attention scores, shared by attention.wgsl (softmax · V) and attention_row.wgsl (the
// softmax weights α of one query row), so both see exactly the same scores, mask and
// causality:
//
//   s(i, j) = scale · q_i · k_j  (+ mask[i, j])      query row i, key j, one head
//
// and (i, j) is BLOCKED (probability exactly 0) when j > qPos0 + i (CAUSAL), or when the
// masked score is ≤ BLOCKED = −1e30 (a mask value of −inf or −3.4e38, HF's finfo.min, does
// that). A row whose keys are all blocked gets probability 0 everywhere (output 0, no NaN).
//
// Layout, token-major as the q/k/v projections write it (elements, f32):
//   q [Sq, Hq, D]   k [Skv_cap, Hkv, D] (rows 0..Skv-1 used)   mask [Sq, Skv]
// Query head h reads key/value head h / (Hq / Hkv) (HF's repeat_kv for grouped-query).
//
// The includer sets: $D (head dim, ≤ 128), $ROWS (query rows per invocation), VEC4
// (D % 4 == 0: vec4 bindings), CAUSAL, MASK. Each invocation holds scale · q of its rows in
// `qv` (load_q); a score is the dot of one slot of qv with a key row (qk), finished by
// finish_score (mask, causality).

struct Params {
  Sq: u32,     // query rows (tokens)
  Skv: u32,    // key/value rows in use (tokens; the k/v tensors may hold more)
  Hq: u32,     // query heads
  Hkv: u32,    // key/value heads (Hq % Hkv == 0)
  qPos0: u32,  // absolute position of query row 0 (CAUSAL: row i sees keys j ≤ qPos0 + i)
  query: u32,  // attention_row.wgsl only: the query row whose α is written
  scale: f32,  // multiplier of q·k (1/√D by default)
  dv4: u32,    // head dim in vec4s, ceil(D / 4) = DV4: loops over the head dim run to this
               // run-time copy, so the compiler does not unroll them (lavapipe: 10–80 s
               // compiles for D = 64–128, and no faster)
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
#endif
#if MASK
@group(0) @binding(4) var<storage, read> mask: array<f32>;
#endif

const D: u32 = $Du;              // head dim (elements)
const DV4: u32 = (D + 3u) / 4u;  // head dim in vec4s; the tail of the last one is zero
const BLOCKED: f32 = -1e30;      // scores at or below this have probability 0
const NEG_BIG: f32 = -3e38;      // finite "−∞": start of the running max, score of a blocked key

const R: u32 = $ROWSu;           // query rows per invocation
var<private> qv: array<array<vec4<f32>, DV4>, R>;  // scale · q of this invocation's rows (one head)


// Element offset of token `tok`, head `h` in a [tokens, heads, D] tensor.
fn head_base(tok: u32, heads: u32, h: u32) -> u32 {
  return (tok * heads + h) * D;
}

// Key/value head read by query head h.
fn kv_head(h: u32) -> u32 {
  return h / (p.Hq / p.Hkv);
}

// Elements 4i..4i+3 of the head vector at element offset `base` (zero past D).
#if VEC4
fn q4(base: u32, i: u32) -> vec4<f32> { return q[(base >> 2u) + i]; }
fn k4(base: u32, i: u32) -> vec4<f32> { return k[(base >> 2u) + i]; }
#else
fn q4(base: u32, i: u32) -> vec4<f32> {
  let d = base + 4u * i;
  let n = base + D;
  return vec4<f32>(q[d], select(0.0, q[d + 1u], d + 1u < n), select(0.0, q[d + 2u], d + 2u < n), select(0.0, q[d + 3u], d + 3u < n));
}
fn k4(base: u32, i: u32) -> vec4<f32> {
  let d = base + 4u * i;
  let n = base + D;
  return vec4<f32>(k[d], select(0.0, k[d + 1u], d + 1u < n), select(0.0, k[d + 2u], d + 2u < n), select(0.0, k[d + 3u], d + 3u < n));
}
#endif

// qv[r] = scale · q[row, h, :]
fn load_q(r: u32, row: u32, h: u32) {
  let base = head_base(row, p.Hq, h);
  for (var i = 0u; i < p.dv4; i++) {
    qv[r][i] = q4(base, i) * p.scale;
  }
}

// scale · q·k for slot r of qv against the key row at element offset kbase.
fn qk(r: u32, kbase: u32) -> f32 {
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < p.dv4; i++) {
    acc = fma(qv[r][i], k4(kbase, i), acc);
  }
  return hsum(acc);
}

fn hsum(a: vec4<f32>) -> f32 {
  return (a.x + a.y) + (a.z + a.w);
}

// The score of query `row` (a row of q; position qPos0 + row) and key j < Skv from their
// scaled dot product: + mask[row, j]; NEG_BIG when causality blocks the pair.
fn finish_score(row: u32, j: u32, dot: f32) -> f32 {
  var s = dot;
#if MASK
  s += mask[row * p.Skv + j];
#endif
#if CAUSAL
  s = select(s, NEG_BIG, j > p.qPos0 + row);
#endif
  return s;
}

// Score of query `row`, held in slot r of qv, against key j of kv head g.
fn score(r: u32, row: u32, j: u32, g: u32) -> f32 {
  return finish_score(row, j, qk(r, head_base(j, p.Hkv, g)));
}

// Weight of a score relative to the running max m (0 for blocked keys).
fn weight(s: f32, m: f32) -> f32 {
  return select(0.0, exp(s - m), s > BLOCKED);
}

// Merges two partial softmax states (max, sum of exp(s − max)) into one.
fn merge_ml(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
