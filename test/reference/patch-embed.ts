/**
 * CPU reference for src/ops/patch-embed.ts: a direct Conv2d with stride = kernel = P and no
 * padding (as torch computes it), f64, output arranged as HF's flatten(2).transpose(1, 2).
 *   pixels [C, H, W], weight [D, C, P, P], bias [D] → [⌊H/P⌋·⌊W/P⌋, D]
 */
export function patchEmbedRef(
  pixels: ArrayLike<number>, C: number, H: number, W: number,
  weight: ArrayLike<number>, D: number, P: number, bias?: ArrayLike<number>,
): Float32Array {
  const oh = Math.floor((H - P) / P) + 1; // conv output size: ⌊(H − kernel) / stride⌋ + 1
  const ow = Math.floor((W - P) / P) + 1;
  // conv[d, oy, ox]
  const conv = new Float64Array(D * oh * ow);
  for (let d = 0; d < D; d++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = bias ? bias[d] : 0;
        for (let c = 0; c < C; c++) {
          for (let ky = 0; ky < P; ky++) {
            for (let kx = 0; kx < P; kx++) {
              s += pixels[c * H * W + (oy * P + ky) * W + (ox * P + kx)] * weight[((d * C + c) * P + ky) * P + kx];
            }
          }
        }
        conv[(d * oh + oy) * ow + ox] = s;
      }
    }
  }
  // flatten(2): [D, oh·ow]; transpose(1, 2): [oh·ow, D]
  const out = new Float32Array(oh * ow * D);
  for (let d = 0; d < D; d++) for (let q = 0; q < oh * ow; q++) out[q * D + d] = conv[d * oh * ow + q];
  return out;
}
