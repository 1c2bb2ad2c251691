// alpha[h, j] = softmax_j(s(query, j)) for ONE query row and every head: the attention
// weights of that row as attention.wgsl uses them (same scores, mask and causality, from
// lib/attention_scores.wgsl), for norm-based attention (Kobayashi et al. 2020), whose
// ‖Σ_h α^h_ij f^h(x_j)‖ needs α of one query against all keys.
//
// One workgroup per head; invocation t takes keys t, t + WG, ... : it writes their raw
// scores to alpha while keeping its own running (max, Σexp), the workgroup merges those
// through workgroup memory, then each invocation rewrites its own entries as
// exp(s − max) / Σ. Blocked keys (and every key of a fully blocked row) get 0.
//
// Output: alpha [Hq, Skv] f32 (probabilities; rows sum to 1 unless fully blocked).
#include "lib/attention_scores.wgsl"
@group(0) @binding(5) var<storage, read_write> alpha: array<f32>;

override WG: u32 = 64u;

var<workgroup> part: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let g = kv_head(h);
  let row = p.query;
  let at = h * p.Skv;
  load_q(0u, row, h);
  var ml = vec2<f32>(NEG_BIG, 0.0);
  for (var j = lid; j < p.Skv; j += WG) {
    let s = score(0u, row, j, g);
    alpha[at + j] = s;
    if (s > BLOCKED) {
      ml = merge_ml(ml, vec2<f32>(s, 1.0));
    }
  }
  part[lid] = ml;
  workgroupBarrier();
  var tot = vec2<f32>(NEG_BIG, 0.0);
  for (var t = 0u; t < WG; t++) {
    tot = merge_ml(tot, part[t]);
  }
  let inv = select(0.0, 1.0 / tot.y, tot.y > 0.0);
  for (var j = lid; j < p.Skv; j += WG) {
    alpha[at + j] = weight(alpha[at + j], tot.x) * inv;
  }
}
