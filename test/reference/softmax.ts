/** CPU reference for shaders/softmax.wgsl: softmax(scale · x) over rows of x [rows, D], f64 after rounding scale · x to f32 (as torch does). */
export function softmaxRef(x: ArrayLike<number>, rows: number, D: number, scale = 1): Float32Array {
  const y = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const s = Array.from({ length: D }, (_, i) => Math.fround(scale * x[r * D + i]));
    const m = Math.max(...s);
    const e = s.map((v) => Math.exp(v - m));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let i = 0; i < D; i++) y[r * D + i] = e[i] / sum;
  }
  return y;
}
