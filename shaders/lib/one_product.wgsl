// f16 rounding for ONE_PRODUCT (`--precision f16`, what HF's fp16 Linear computes; the
// matmul headers say where it applies). Needs `enable f16`.
//   h1(v), h4(v)   v rounded to f16, back in f32
#if ONE_PRODUCT
fn h1(v: f32) -> f32 {
  return f32(f16(v));
}
fn h4(v: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(vec4<f16>(v));
}
#endif
