/**
 * CPU reference for shaders/rope.wgsl, written as HF's apply_rotary_pos_emb:
 *   emb = cat(freqs, freqs); q_embed = q · cos(emb) + rotate_half(q) · sin(emb),
 *   rotate_half(q) = cat(−q[half:], q[:half])
 * x [seq, heads, headDim]; cos(pos, i) / sin(pos, i) for i < headDim / 2 are given by the
 * caller (torch's own values from the fixture, or the host table checked against them).
 */
export function ropeRef(
  x: ArrayLike<number>, seq: number, heads: number, headDim: number, pos0: number,
  cos: (pos: number, i: number) => number, sin: (pos: number, i: number) => number,
): Float32Array {
  const half = headDim / 2;
  const y = new Float32Array(seq * heads * headDim);
  for (let s = 0; s < seq; s++) {
    const pos = pos0 + s;
    for (let h = 0; h < heads; h++) {
      const o = (s * heads + h) * headDim;
      const q = Array.from({ length: headDim }, (_, d) => x[o + d]);
      const rot = [...q.slice(half).map((v) => -v), ...q.slice(0, half)];
      for (let d = 0; d < headDim; d++) {
        const j = d % half; // cat(freqs, freqs)
        y[o + d] = q[d] * cos(pos, j) + rot[d] * sin(pos, j);
      }
    }
  }
  return y;
}
