/** CPU reference for shaders/topk.wgsl: sorted top-k (ties → smaller id) and softmax probabilities, f64. */
export function topkRef(x: Float32Array, rows: number, V: number, k: number): { ids: number[][]; probs: number[][] } {
  const ids: number[][] = [];
  const probs: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from(x.subarray(r * V, (r + 1) * V));
    const m = Math.max(...row);
    const sum = row.reduce((a, v) => a + Math.exp(v - m), 0);
    const order = row.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k);
    ids.push(order.map((o) => o[1]));
    probs.push(order.map((o) => Math.exp(o[0] - m) / sum));
  }
  return { ids, probs };
}
