/**
 * CPU reference for shaders/pair_cos_hist.wgsl and the quantiles read off it: every
 * image × text |cos| in f64, pair by pair (zero rows skipped), binned as the kernel bins
 * them (the sorted values give the order statistics the quantiles are checked against).
 */
export interface PairCosRef {
  /** Every |cos|, sorted. */
  values: number[];
  hist: number[];
  /** Values within `edge` of a bin boundary: f32 rounding may put them in the neighbouring bin. */
  nearEdge: number;
}

export function pairCosRef(h: Float32Array, d: number, image: readonly number[], text: readonly number[], bins: number, edge = 1e-5): PairCosRef {
  const norm = (i: number) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += h[i * d + c] ** 2;
    return Math.sqrt(s);
  };
  const values: number[] = [];
  const hist = new Array<number>(bins).fill(0);
  let nearEdge = 0;
  for (const i of image) {
    const ni = norm(i);
    for (const j of text) {
      const nj = norm(j);
      if (ni === 0 || nj === 0) continue;
      let dot = 0;
      for (let c = 0; c < d; c++) dot += h[i * d + c] * h[j * d + c];
      const v = Math.min(1, Math.abs(dot) / (ni * nj));
      values.push(v);
      hist[Math.min(bins - 1, Math.floor(v * bins))]++;
      const f = v * bins;
      if (Math.abs(f - Math.round(f)) < edge * bins) nearEdge++;
    }
  }
  values.sort((a, b) => a - b);
  return { values, hist, nearEdge };
}
