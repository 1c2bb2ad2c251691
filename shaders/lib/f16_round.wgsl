// Rounding f32 to the nearest f16 value (ties to even), kept in f32, for ONE_PRODUCT
// (`--precision f16`):
//   h1(v), h4(v)   v rounded to f16: ±inf past 65504, multiples of 2⁻²⁴ below 2⁻¹⁴
//                  (f16's subnormals), inf and NaN unchanged
// Integer arithmetic on the bits, not `f32(f16(v))`: Mesa (lavapipe) folds a round trip
// through f16 — and through pack2x16float / unpack2x16float — into nothing, so the
// conversion would round on some drivers and not on others. No shader-f16 needed.
fn h1(v: f32) -> f32 {
  let u = bitcast<u32>(v);
  let e = (u >> 23u) & 0xffu;  // f32's biased exponent; f16's normal range is 113 ..= 142
  // drop 13 of the 23 mantissa bits, to nearest, ties to even (a carry moves up the exponent)
  let r = (u + 0xfffu + ((u >> 13u) & 1u)) & 0xffffe000u;
  let inf = bitcast<f32>((u & 0x80000000u) | 0x7f800000u);
  let sub = round(v * 16777216.0) * 5.9604644775390625e-8;  // exact scalings by 2^±24
  // selects, not branches: the kernels call it in unrolled loops (lavapipe compiles them faster)
  let normal = select(bitcast<f32>(r), inf, (r & 0x7fffffffu) > 0x477fe000u);  // past 65504
  return select(select(normal, sub, e < 113u), v, e == 255u);
}

fn h4(v: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(h1(v.x), h1(v.y), h1(v.z), h1(v.w));
}
