/**
 * CPU reference for shaders/norm_attention.wgsl, from the definition (Kobayashi et al. 2020)
 * with plain loops in f64 — f^h(x_j) is formed explicitly for every head and key, no Gram
 * matrices and no weighted-value matmul:
 *
 *   f^h(x_j)[o] = Σ_{e<Dh} v[j, g(h), e] · W_O[o, h·Dh + e]        g(h) = h / (Hq / Hkv)
 *   head[h][j]  = ‖α[h][j] · f^h(x_j)‖          layer[j] = ‖Σ_h α[h][j] · f^h(x_j)‖
 *
 * alpha [Hq, Skv]; v [Skv, Hkv, Dh]; wO [d, Hq·Dh] (HF [out, in]).
 */
export function normAttentionRef(
  alpha: ArrayLike<number>, v: ArrayLike<number>, wO: ArrayLike<number>,
  Hq: number, Hkv: number, Dh: number, d: number, Skv: number,
): { head: Float64Array; layer: Float64Array } {
  const head = new Float64Array(Hq * Skv);
  const layer = new Float64Array(Skv);
  const f = new Float64Array(d);
  const sum = new Float64Array(d);
  for (let j = 0; j < Skv; j++) {
    sum.fill(0);
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      for (let o = 0; o < d; o++) {
        let s = 0;
        for (let e = 0; e < Dh; e++) s += v[(j * Hkv + g) * Dh + e] * wO[o * Hq * Dh + h * Dh + e];
        f[o] = s;
      }
      const a = alpha[h * Skv + j];
      let n = 0;
      for (let o = 0; o < d; o++) {
        n += (a * f[o]) ** 2;
        sum[o] += a * f[o];
      }
      head[h * Skv + j] = Math.sqrt(n);
    }
    let n = 0;
    for (let o = 0; o < d; o++) n += sum[o] ** 2;
    layer[j] = Math.sqrt(n);
  }
  return { head, layer };
}
