/** CPU reference for shaders/embedding.wgsl: rows of table [vocab, D] picked by ids (0 for ids outside). */
export function embeddingRef(ids: ArrayLike<number>, table: ArrayLike<number>, vocab: number, D: number): Float32Array {
  const out = new Float32Array(ids.length * D);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (id < 0 || id >= vocab) continue;
    for (let c = 0; c < D; c++) out[r * D + c] = table[id * D + c];
  }
  return out;
}
