/**
 * CPU reference for shaders/attention.wgsl and shaders/attention_row.wgsl: the full score
 * matrix per head in f64, a max-subtracted softmax, then P·V. Plain loops, written from the
 * definition (not from the shader):
 *
 *   q [Sq, Hq, D], k/v [Skv, Hkv, D]; head h uses kv head floor(h / (Hq / Hkv))
 *   S[h, i, j] = scale · Σ_d q[i, h, d] k[j, g, d] + mask[i, j]
 *   blocked: causal and j > qPos0 + i, or S ≤ −1e30 (mask −inf); a row with every key
 *            blocked has P = 0 (output 0)
 *   P = softmax_j(S) over unblocked keys; out[i, h·D + d] = Σ_j P[h, i, j] v[j, g, d]
 */
export interface AttentionRefOptions {
  causal?: boolean;
  qPos0?: number;
  scale?: number;
  mask?: ArrayLike<number>;
}

export interface AttentionShape {
  Sq: number;
  Skv: number;
  Hq: number;
  Hkv: number;
  D: number;
}

/** P [Hq, Sq, Skv] in f64. */
export function attentionProbsRef(q: ArrayLike<number>, k: ArrayLike<number>, sh: AttentionShape, opts: AttentionRefOptions = {}): Float64Array {
  const { Sq, Skv, Hq, Hkv, D } = sh;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const qPos0 = opts.qPos0 ?? Math.max(0, Skv - Sq);
  const group = Hq / Hkv;
  const P = new Float64Array(Hq * Sq * Skv);
  const s = new Float64Array(Skv);
  const ok = new Uint8Array(Skv);
  for (let h = 0; h < Hq; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < Sq; i++) {
      let max = -Infinity;
      for (let j = 0; j < Skv; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(i * Hq + h) * D + d] * k[(j * Hkv + g) * D + d];
        let x = scale * dot;
        if (opts.mask) x += opts.mask[i * Skv + j];
        ok[j] = x > -1e30 && !(opts.causal && j > qPos0 + i) ? 1 : 0;
        s[j] = x;
        if (ok[j] && x > max) max = x;
      }
      let sum = 0;
      for (let j = 0; j < Skv; j++) {
        s[j] = ok[j] ? Math.exp(s[j] - max) : 0;
        sum += s[j];
      }
      for (let j = 0; j < Skv; j++) P[(h * Sq + i) * Skv + j] = sum > 0 ? s[j] / sum : 0;
    }
  }
  return P;
}

/** out [Sq, Hq·D]. */
export function attentionRef(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, sh: AttentionShape, opts: AttentionRefOptions = {},
): Float64Array {
  const { Sq, Skv, Hq, Hkv, D } = sh;
  const P = attentionProbsRef(q, k, sh, opts);
  const group = Hq / Hkv;
  const out = new Float64Array(Sq * Hq * D);
  for (let h = 0; h < Hq; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < Sq; i++) {
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let j = 0; j < Skv; j++) acc += P[(h * Sq + i) * Skv + j] * v[(j * Hkv + g) * D + d];
        out[(i * Hq + h) * D + d] = acc;
      }
    }
  }
  return out;
}
