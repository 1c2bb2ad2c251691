// 16-bit float words as they sit in safetensors files: two values per u32, element 2k in
// the low half. Core WGSL only (no shader-f16).
//   half_at(word, i)      element i of a packed-f16 array, given the word holding it (word = a[i >> 1])
//   unpack2x16bfloat(w)   both bfloat16 halves of w as f32 (bf16 is the top half of an f32: exact)

fn half_at(word: u32, i: u32) -> f32 {
  let pair = unpack2x16float(word);
  return select(pair.x, pair.y, (i & 1u) == 1u);
}

fn unpack2x16bfloat(w: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}
