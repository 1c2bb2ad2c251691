/**
 * Elementwise ops, all from the one template shaders/elementwise.wgsl (the table below
 * gives each op's WGSL expression; activations come from shaders/lib/activations.wgsl):
 *   gelu(x)            HF "gelu" (erf form): projector, EVA, Q-Former MLPs
 *   quickGelu(x)       CLIP's quick_gelu: x · σ(1.702 x)
 *   silu(x)            x · σ(x)
 *   siluMul(gate, up)  LLaMA MLP: act_fn(gate_proj(x)) * up_proj(x)
 *   add(a, b)          residual add; b may also be a trailing-dims broadcast (bias [D] on [rows, D])
 *   mul(a, b)          elementwise product (same broadcast rule)
 *   scale(x, alpha)    x · alpha
 * All f32. `inPlace: true` writes the result into the first operand and returns it.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elementGrid, requireF32 } from './common.ts';

export type UnaryOp = 'gelu' | 'quick_gelu' | 'silu' | 'scale';
export type BinaryOp = 'silu_mul' | 'add' | 'mul';

/** The WGSL expression of each op, in `a`, `b` and `p.alpha`. */
const OPS: Record<UnaryOp | BinaryOp, { expr: string; binary: boolean; flops: number }> = {
  gelu: { expr: 'gelu(a)', binary: false, flops: 20 },
  quick_gelu: { expr: 'quick_gelu(a)', binary: false, flops: 5 },
  silu: { expr: 'silu(a)', binary: false, flops: 4 },
  scale: { expr: 'a * p.alpha', binary: false, flops: 1 },
  silu_mul: { expr: 'silu(a) * b', binary: true, flops: 5 },
  add: { expr: 'a + b', binary: true, flops: 1 },
  mul: { expr: 'a * b', binary: true, flops: 1 },
};

export interface ElementwiseOptions {
  /** Write into the first operand (no new tensor). */
  inPlace?: boolean;
  name?: string;
}

const WG = 256;

/** The generic entry: `op` over a (and b). Prefer the named wrappers below. */
export function elementwise(gpu: Gpu, op: UnaryOp | BinaryOp, a: Tensor, b: Tensor | null, alpha = 0, opts: ElementwiseOptions = {}): Tensor {
  const spec = OPS[op];
  requireF32(op, 'a', a);
  const n = a.numel;
  if (spec.binary) {
    if (!b) throw new GpuError(`${op}: needs two operands`);
    requireF32(op, 'b', b);
    if (!broadcasts(b.shape, a.shape)) {
      throw new GpuError(`${op}: ${b} does not match ${a} (same shape, or the trailing dims of it)`);
    }
    if (opts.inPlace && b.buffer === a.buffer) throw new GpuError(`${op}: in place needs b to be another buffer than a (${a})`);
  } else if (b) throw new GpuError(`${op}: takes one operand, got ${b} too`);
  const y = opts.inPlace ? a : gpu.tensor(a.shape, 'f32', opts.name ?? `${op}(${a.name}${b ? ', ' + b.name : ''})`, { fullyWritten: true });
  gpu.dispatch({
    kernel: op,
    pipeline: { shader: 'elementwise.wgsl', defines: { OP: spec.expr, BINARY: spec.binary, IN_PLACE: !!opts.inPlace }, constants: { WG } },
    params: { values: [n, b?.numel ?? n, alpha], types: 'uuf' },
    bindings: opts.inPlace ? [a, b] : [a, b, y],
    workgroups: elementGrid(gpu, n, WG),
    shapes: b ? `n=${n} nb=${b.numel}` : `n=${n}`,
    flops: spec.flops * n,
    bytes: 4 * (2 * n + (b?.numel ?? 0)),
  });
  return y;
}

/** True when b's shape equals a's trailing dims (leading 1s ignored). */
function broadcasts(b: readonly number[], a: readonly number[]): boolean {
  const bs = [...b];
  while (bs.length > 1 && bs[0] === 1) bs.shift();
  if (bs.length > a.length) return false;
  const tail = a.slice(a.length - bs.length);
  return bs.every((d, i) => d === tail[i]);
}

export const gelu = (gpu: Gpu, x: Tensor, opts?: ElementwiseOptions) => elementwise(gpu, 'gelu', x, null, 0, opts);
export const quickGelu = (gpu: Gpu, x: Tensor, opts?: ElementwiseOptions) => elementwise(gpu, 'quick_gelu', x, null, 0, opts);
export const silu = (gpu: Gpu, x: Tensor, opts?: ElementwiseOptions) => elementwise(gpu, 'silu', x, null, 0, opts);
export const scale = (gpu: Gpu, x: Tensor, alpha: number, opts?: ElementwiseOptions) => elementwise(gpu, 'scale', x, null, alpha, opts);
/** LLaMA MLP: silu(gate) · up. */
export const siluMul = (gpu: Gpu, gate: Tensor, up: Tensor, opts?: ElementwiseOptions) => elementwise(gpu, 'silu_mul', gate, up, 0, opts);
export const add = (gpu: Gpu, a: Tensor, b: Tensor, opts?: ElementwiseOptions) => elementwise(gpu, 'add', a, b, 0, opts);
export const mul = (gpu: Gpu, a: Tensor, b: Tensor, opts?: ElementwiseOptions) => elementwise(gpu, 'mul', a, b, 0, opts);
