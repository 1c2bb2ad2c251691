/** CPU reference for shaders/layernorm.wgsl: HF nn.LayerNorm over rows of x [rows, D], f64. */
export function layerNormRef(
  x: ArrayLike<number>, rows: number, D: number,
  weight: ArrayLike<number>, bias: ArrayLike<number> | undefined, eps: number,
): Float32Array {
  const y = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[r * D + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[r * D + i] - mean) ** 2;
    v /= D; // biased, as torch.nn.LayerNorm
    const rstd = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < D; i++) y[r * D + i] = (x[r * D + i] - mean) * rstd * weight[i] + (bias ? bias[i] : 0);
  }
  return y;
}
