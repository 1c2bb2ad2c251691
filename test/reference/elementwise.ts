/** CPU reference for shaders/elementwise.wgsl, in f64 (activations from ./activations.ts). */
import { activation } from './activations.ts';

export type EwOp = 'gelu' | 'quick_gelu' | 'silu' | 'scale' | 'silu_mul' | 'add' | 'mul';

/** y[i] = op(a[i], b[i mod b.length]) */
export function elementwiseRef(op: EwOp, a: ArrayLike<number>, b?: ArrayLike<number>, alpha = 0): Float32Array {
  const y = new Float32Array(a.length);
  const silu = activation('silu');
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const z = b ? b[i % b.length] : NaN;
    switch (op) {
      case 'gelu':
      case 'quick_gelu':
      case 'silu':
        y[i] = activation(op)(x);
        break;
      case 'scale':
        y[i] = x * alpha;
        break;
      case 'silu_mul':
        y[i] = silu(x) * z;
        break;
      case 'add':
        y[i] = x + z;
        break;
      case 'mul':
        y[i] = x * z;
        break;
    }
  }
  return y;
}
