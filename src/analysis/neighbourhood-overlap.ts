/**
 * Neighbourhood overlap (the narrow-gate study, arXiv 2412.06646): how much of a
 * representation's neighbourhood shares its class. For N samples with vectors x_i and
 * labels y_i, and k < N:
 *
 *   overlap = 1/N Σ_i |{ j ∈ kNN(i) : y_j = y_i }| / k
 *
 * kNN(i): the k samples j ≠ i of largest cos(x_i, x_j) (ties: the earlier sample first).
 * A zero vector has no direction: its cosines are taken as −∞ (never a neighbour; its own
 * neighbourhood is the first k others). `chance` is the overlap a random neighbourhood
 * has on average: Σ_c (n_c / N)·(n_c − 1)/(N − 1).
 *
 * Host code, f64 dot products of f32 unit vectors: O(N² d) per call.
 */
export function neighbourhoodOverlap(vectors: readonly Float32Array[], labels: readonly string[], k: number): number {
  const N = vectors.length;
  if (labels.length !== N) throw new Error(`neighbourhoodOverlap: ${N} vectors but ${labels.length} labels`);
  if (!(Number.isInteger(k) && k >= 1 && k < N)) throw new Error(`neighbourhoodOverlap: k = ${k} must be in 1..${N - 1}`);
  const unit = vectors.map((v) => {
    let s = 0;
    for (let c = 0; c < v.length; c++) s += v[c] * v[c];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    return { u: Float64Array.from(v, (x) => x * inv), zero: s === 0 };
  });
  let total = 0;
  const sims = new Float64Array(N);
  const order = Array.from({ length: N }, (_, j) => j);
  for (let i = 0; i < N; i++) {
    const a = unit[i];
    for (let j = 0; j < N; j++) {
      if (j === i || a.zero || unit[j].zero) {
        sims[j] = -Infinity;
        continue;
      }
      const b = unit[j].u;
      let d = 0;
      for (let c = 0; c < b.length; c++) d += a.u[c] * b[c];
      sims[j] = d;
    }
    const near = order.filter((j) => j !== i).sort((x, y) => sims[y] - sims[x] || x - y).slice(0, k);
    total += near.filter((j) => labels[j] === labels[i]).length / k;
  }
  return total / N;
}

export function chanceOverlap(labels: readonly string[]): number {
  const N = labels.length;
  const counts = new Map<string, number>();
  for (const y of labels) counts.set(y, (counts.get(y) ?? 0) + 1);
  let s = 0;
  for (const n of counts.values()) s += (n / N) * ((n - 1) / (N - 1));
  return s;
}
