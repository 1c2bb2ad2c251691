/**
 * y = act(x Wᵀ + b) + residual — HF `nn.Linear` with an optional fused epilogue.
 *   x [..., K] f32, W [N, K] f32 or f16 (HF layout [out, in]), b [N], residual [..., N]
 * Kernel: shaders/matmul.wgsl.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';

export type Activation = 'none' | 'gelu' | 'quick_gelu' | 'silu';
const ACT: Record<Activation, number> = { none: 0, gelu: 1, quick_gelu: 2, silu: 3 };

export interface LinearOptions {
  bias?: Tensor;
  act?: Activation;
  residual?: Tensor;
  /** Name of the output tensor (default `${x.name}@${w.name}`). */
  name?: string;
}

const WG = 8; // invocations per workgroup side; each computes 4×4 outputs

export function linear(gpu: Gpu, x: Tensor, w: Tensor, opts: LinearOptions = {}): Tensor {
  const K = x.shape[x.shape.length - 1];
  const M = x.numel / K;
  const [N, Kw] = w.shape;
  if (w.shape.length !== 2 || Kw !== K) throw new GpuError(`linear: ${x} · ${w}ᵀ: inner sizes differ (expected W [N, ${K}])`);
  if (x.dtype !== 'f32') throw new GpuError(`linear: activations must be f32, got ${x}`);
  if (opts.bias && opts.bias.numel !== N) throw new GpuError(`linear: bias ${opts.bias} does not have ${N} elements`);
  if (opts.residual && opts.residual.numel !== M * N) throw new GpuError(`linear: residual ${opts.residual} is not [${M}, ${N}]`);
  const outShape = [...x.shape.slice(0, -1), N];
  const y = gpu.tensor(outShape, 'f32', opts.name ?? `${x.name}@${w.name}`);
  const vec4 = K % 4 === 0;
  const wf16 = w.dtype === 'f16';
  gpu.dispatch({
    kernel: `matmul.${w.dtype}`,
    pipeline: {
      shader: 'matmul.wgsl',
      defines: { VEC4: vec4, W_F16: wf16, W_BINDING: 2, BIAS: !!opts.bias, RESIDUAL: !!opts.residual, ACT: ACT[opts.act ?? 'none'] },
      constants: { WG_X: WG, WG_Y: WG },
    },
    params: { values: [M, N, K] },
    bindings: [x, w, opts.bias ?? null, opts.residual ?? null, y],
    workgroups: [Math.ceil(N / (4 * WG)), Math.ceil(M / (4 * WG))],
    shapes: `M=${M} N=${N} K=${K}`,
    flops: 2 * M * N * K,
    bytes: 4 * M * K + (wf16 ? 2 : 4) * N * K + 4 * M * N,
  });
  return y;
}
