// Rotary position embedding, HF's rotate-half layout (LlamaRotaryEmbedding +
// apply_rotary_pos_emb): for the token at position p = pos0 + s and i < half = head_dim / 2,
//   out[i]        = x[i] · cos(p·f_i) − x[i + half] · sin(p·f_i)
//   out[i + half] = x[i + half] · cos(p·f_i) + x[i] · sin(p·f_i)
//   x, out [seq, heads, head_dim] f32 (q or k straight out of the projection, viewed per head)
//
// cos/sin come from a table built on the host (src/ops/rope.ts) with HF's f32 rounding of
// inv_freq and of p·inv_freq: WGSL's cos/sin have no precision guarantee for angles in the
// thousands, and the rounding of the angle itself must match HF's to agree at p ~ 4096.
// One invocation per (s, head, i) pair: it reads both halves before writing, so IN_PLACE
// (x bound read_write, no out) is race-free.
// PAIR (with IN_PLACE): q in x and k in k_in (binding 3, heads_k heads), both rotated in one
// dispatch — the first seq·heads·half invocations take q, the rest k.
//
// defines: IN_PLACE, PAIR
#include "lib/grid.wgsl"

struct Params {
  seq: u32,   // tokens in x
  heads: u32, // heads per token
  half: u32,  // head_dim / 2 (elements)
  pos0: u32,  // position of token 0 (tokens already in the KV cache)
  heads_k: u32, // PAIR: k's heads per token
}

@group(0) @binding(0) var<uniform> p: Params;
#if IN_PLACE
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
#if PAIR
@group(0) @binding(3) var<storage, read_write> k_in: array<f32>;
#endif
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif
// table[pos, i] = (cos, sin) of pos · inv_freq[i]: [max_pos, half] vec2
@group(0) @binding(2) var<storage, read> table: array<vec2<f32>>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  var e = workgroup_index(wid, nwg) * WG + lid;
  var heads = p.heads;
#if PAIR
  let nq = p.seq * p.heads * p.half;
  let is_k = e >= nq;
  if (is_k) {
    e -= nq;
    heads = p.heads_k;
  }
#endif
  if (e >= p.seq * heads * p.half) { return; }
  let i = e % p.half;
  let sh = e / p.half; // s · heads + head
  let s = sh / heads;
  let cs = table[(p.pos0 + s) * p.half + i];
  let lo = sh * 2u * p.half + i;
  let hi = lo + p.half;
#if PAIR
  if (is_k) {
    let a = k_in[lo];
    let b = k_in[hi];
    k_in[lo] = a * cs.x - b * cs.y;
    k_in[hi] = b * cs.x + a * cs.y;
    return;
  }
#endif
  let a = x[lo];
  let b = x[hi];
#if IN_PLACE
  x[lo] = a * cs.x - b * cs.y;
  x[hi] = b * cs.x + a * cs.y;
#else
  out[lo] = a * cs.x - b * cs.y;
  out[hi] = b * cs.x + a * cs.y;
#endif
}
