/**
 * CPU references for shaders/convert.wgsl: 16-bit float bits → f32 by decoding sign,
 * exponent and mantissa by hand (independent of src/gpu/half.ts).
 */
export function f16BitsRef(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -24 : s * (1024 + m) * 2 ** (e - 25);
}

export function bf16BitsRef(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0xff) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -133 : s * (128 + m) * 2 ** (e - 134);
}
