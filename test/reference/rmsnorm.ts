/** CPU reference for shaders/rmsnorm.wgsl: HF LlamaRMSNorm over rows of x [rows, D], f64. */
export function rmsNormRef(x: ArrayLike<number>, rows: number, D: number, weight: ArrayLike<number>, eps: number): Float32Array {
  const y = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[r * D + i] * x[r * D + i];
    const scale = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) y[r * D + i] = weight[i] * (x[r * D + i] * scale);
  }
  return y;
}
