/**
 * CPU reference for shaders/contextualization.wgsl, straight from the definitions (DESIGN.md
 * "Exact metric definitions" 1–2), in f64 and O(m² d) — pair by pair, not through the
 * unit-vector sums the kernel uses:
 *
 *   inter      = 1/(m n) Σ_{i ∈ img} Σ_{j ∈ txt} cos(h_i, h_j)
 *   intra_img  = 1/(m (m − 1)) Σ_{i ≠ i' ∈ img} cos(h_i, h_i')
 *   intra_txt  likewise over the text set
 *
 * h [rows, d]; zero rows are left out of the sets (and of m, n); NaN where a mean has no pairs.
 */
export interface ContextRef {
  inter: number;
  intra_image: number;
  intra_text: number;
  m: number;
  n: number;
}

export function contextualizationRef(h: Float32Array, d: number, image: readonly number[], text: readonly number[]): ContextRef {
  const norms = new Map<number, number>();
  const norm = (i: number) => {
    let s = norms.get(i);
    if (s === undefined) {
      s = 0;
      for (let c = 0; c < d; c++) s += h[i * d + c] * h[i * d + c];
      s = Math.sqrt(s);
      norms.set(i, s);
    }
    return s;
  };
  const cos = (i: number, j: number) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += h[i * d + c] * h[j * d + c];
    return s / (norm(i) * norm(j));
  };
  const img = image.filter((i) => norm(i) > 0);
  const txt = text.filter((i) => norm(i) > 0);
  const meanPairs = (a: number[], b: number[], skipSame: boolean) => {
    let s = 0;
    let count = 0;
    for (const i of a) {
      for (const j of b) {
        if (skipSame && i === j) continue;
        s += cos(i, j);
        count++;
      }
    }
    return count ? s / count : NaN;
  };
  return {
    inter: meanPairs(img, txt, false),
    intra_image: meanPairs(img, img, true),
    intra_text: meanPairs(txt, txt, true),
    m: img.length,
    n: txt.length,
  };
}
