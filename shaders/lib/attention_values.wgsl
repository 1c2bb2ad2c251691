// The value and output sides of attention, shared by attention.wgsl ('rows', 'split') and
// attention_flash.wgsl ('flash', 'decode'): the v and out bindings and their vec4 accessors.
//
//   v [Skv_cap, Hkv, D]   out [Sq, Hq, D]   (f32, token-major; the includer has included
//                                            lib/attention_scores.wgsl for D, head_base, p)
//
// VEC4 (D % 4 == 0) binds both as vec4 arrays; otherwise they are scalar arrays read and
// written four elements at a time, zero past D.
#if VEC4
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
#else
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
#endif

// Elements 4i..4i+3 of the value row at element offset `base` (zero past D).
#if VEC4
fn v4(base: u32, i: u32) -> vec4<f32> { return v[(base >> 2u) + i]; }
#else
fn v4(base: u32, i: u32) -> vec4<f32> {
  let d = base + 4u * i;
  let n = base + D;
  return vec4<f32>(v[d], select(0.0, v[d + 1u], d + 1u < n), select(0.0, v[d + 2u], d + 2u < n), select(0.0, v[d + 3u], d + 3u < n));
}
#endif

// out[row, h, 4i..4i+3] = val (elements past D dropped)
fn store4(row: u32, h: u32, i: u32, val: vec4<f32>) {
  let base = head_base(row, p.Hq, h);
#if VEC4
  out[(base >> 2u) + i] = val;
#else
  for (var c = 0u; c < 4u; c++) {
    if (4u * i + c < D) {
      out[base + 4u * i + c] = val[c];
    }
  }
#endif
}
