/** Loop reference of shaders/nonfinite.wgsl: how many elements are NaN or ±Inf. */
export function nonFiniteRef(x: Float32Array): number {
  let n = 0;
  for (const v of x) if (!Number.isFinite(v)) n++;
  return n;
}
