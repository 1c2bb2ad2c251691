/**
 * CPU references (f64) for the VQ-encoder kernels: a direct zero-padded Conv2d, torch's
 * GroupNorm (+ SiLU) and the nearest-codeword argmin. Channels-last arrays, as the ops use.
 */

/** x [H, W, C], weight [D, C, KH, KW], pad [top, left, bottom, right] → [Ho, Wo, D]. */
export function conv2dRef(
  x: ArrayLike<number>, H: number, W: number, C: number,
  weight: ArrayLike<number>, D: number, KH: number, KW: number,
  stride: number, pad: [number, number, number, number], bias?: ArrayLike<number>,
): { y: Float32Array; Ho: number; Wo: number } {
  const [top, left, bottom, right] = pad;
  const Ho = Math.floor((H + top + bottom - KH) / stride) + 1;
  const Wo = Math.floor((W + left + right - KW) / stride) + 1;
  const y = new Float32Array(Ho * Wo * D);
  for (let oy = 0; oy < Ho; oy++) {
    for (let ox = 0; ox < Wo; ox++) {
      for (let d = 0; d < D; d++) {
        let s = bias ? bias[d] : 0;
        for (let c = 0; c < C; c++) {
          for (let ky = 0; ky < KH; ky++) {
            const iy = oy * stride + ky - top;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < KW; kx++) {
              const ix = ox * stride + kx - left;
              if (ix < 0 || ix >= W) continue;
              s += x[(iy * W + ix) * C + c] * weight[((d * C + c) * KH + ky) * KW + kx];
            }
          }
        }
        y[(oy * Wo + ox) * D + d] = s;
      }
    }
  }
  return { y, Ho, Wo };
}

/** x [N, C] channels last, G groups of C/G channels; optional SiLU. */
export function groupNormRef(
  x: ArrayLike<number>, N: number, C: number, G: number,
  weight: ArrayLike<number>, bias: ArrayLike<number>, eps: number, silu = false,
): Float32Array {
  const y = new Float32Array(N * C);
  const cg = C / G;
  for (let g = 0; g < G; g++) {
    let mean = 0;
    for (let n = 0; n < N; n++) for (let j = 0; j < cg; j++) mean += x[n * C + g * cg + j];
    mean /= N * cg;
    let v = 0;
    for (let n = 0; n < N; n++) for (let j = 0; j < cg; j++) v += (x[n * C + g * cg + j] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / (N * cg) + eps);
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < cg; j++) {
        const c = g * cg + j;
        const h = (x[n * C + c] - mean) * rstd * weight[c] + bias[c];
        y[n * C + c] = silu ? h / (1 + Math.exp(-h)) : h;
      }
    }
  }
  return y;
}

/** Per row of z [N, D]: the index of the nearest row of codebook [K, D] (smallest on ties), and the gap to the runner-up. */
export function argminRef(z: ArrayLike<number>, N: number, D: number, codebook: ArrayLike<number>, K: number): { idx: number[]; gap: number[] } {
  const idx: number[] = [];
  const gap: number[] = [];
  for (let n = 0; n < N; n++) {
    let best = Infinity;
    let second = Infinity;
    let bk = 0;
    for (let k = 0; k < K; k++) {
      let d = 0;
      for (let i = 0; i < D; i++) d += (z[n * D + i] - codebook[k * D + i]) ** 2;
      if (d < best) {
        second = best;
        best = d;
        bk = k;
      } else if (d < second) second = d;
    }
    idx.push(bk);
    gap.push(second - best);
  }
  return { idx, gap };
}
