/** CPU reference for shaders/matmul.wgsl: y[M,N] = act(x[M,K]·W[N,K]ᵀ + b) + r, f64 accumulation. */
import { activation, type ActName } from './activations.ts';

export function linearRef(
  x: Float32Array, w: ArrayLike<number>, M: number, N: number, K: number,
  opts: { bias?: ArrayLike<number>; act?: ActName; residual?: ArrayLike<number> } = {},
): Float32Array {
  const y = new Float32Array(M * N);
  const act = activation(opts.act ?? 'none');
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      if (opts.bias) s += opts.bias[n];
      s = act(s);
      if (opts.residual) s += opts.residual[m * N + n];
      y[m * N + n] = s;
    }
  }
  return y;
}
