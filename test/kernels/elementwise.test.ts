import { describe, expect, it } from 'vitest';
import { add, elementwise, gelu, mul, quickGelu, scale, silu, siluMul, type BinaryOp, type UnaryOp } from '../../src/ops/elementwise.ts';
import { elementwiseRef } from '../reference/elementwise.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';

// 256 elements per workgroup: sizes below, at, and off multiples of it.
const sizes: number[][] = [[1], [7, 37], [256], [3, 1000]];

describe('elementwise.wgsl', () => {
  const unary: UnaryOp[] = ['gelu', 'quick_gelu', 'silu', 'scale'];
  const binary: BinaryOp[] = ['silu_mul', 'add', 'mul'];
  for (const shape of sizes) {
    const n = shape.reduce((x, y) => x * y, 1);
    for (const op of unary) {
      it(`${op} [${shape}]`, async () => {
        const gpu = await getGpu();
        // scale 8: covers the tails of the activations (x ≪ 0 where GELU's 1 + erf cancels)
        const a = randn(n, n + op.length, 8);
        const y = await gpu.readF32(elementwise(gpu, op, gpu.upload(a, shape, 'a'), null, 0.125));
        expect(relErr(y, elementwiseRef(op, a, undefined, 0.125))).toBeLessThanOrEqual(1e-5);
      });
    }
    for (const op of binary) {
      it(`${op} [${shape}]`, async () => {
        const gpu = await getGpu();
        const a = randn(n, n + 1, 6);
        const b = randn(n, n + 2, 2);
        const y = await gpu.readF32(elementwise(gpu, op, gpu.upload(a, shape, 'a'), gpu.upload(b, shape, 'b')));
        expect(relErr(y, elementwiseRef(op, a, b))).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('named wrappers, in place, and bias broadcast over rows', async () => {
    const gpu = await getGpu();
    const [rows, D] = [9, 70];
    const x = randn(rows * D, 1, 4);
    const r = randn(rows * D, 2);
    const bias = randn(D, 3);
    const xt = gpu.upload(x, [rows, D], 'x');
    // x ← x + r (residual add in place), then x ← x + bias (broadcast), then new tensors
    expect(add(gpu, xt, gpu.upload(r, [rows, D], 'r'), { inPlace: true })).toBe(xt);
    add(gpu, xt, gpu.upload(bias, [D], 'bias'), { inPlace: true });
    const sum = elementwiseRef('add', elementwiseRef('add', x, r), bias);
    expect(relErr(await gpu.readF32(xt), sum)).toBeLessThanOrEqual(1e-5);
    const checks: [Promise<Float32Array>, Float32Array][] = [
      [gpu.readF32(gelu(gpu, xt)), elementwiseRef('gelu', sum)],
      [gpu.readF32(quickGelu(gpu, xt)), elementwiseRef('quick_gelu', sum)],
      [gpu.readF32(silu(gpu, xt)), elementwiseRef('silu', sum)],
      [gpu.readF32(scale(gpu, xt, -3)), elementwiseRef('scale', sum, undefined, -3)],
      [gpu.readF32(siluMul(gpu, xt, gpu.upload(r, [rows, D], 'up'))), elementwiseRef('silu_mul', sum, r)],
      [gpu.readF32(mul(gpu, xt, gpu.upload(bias, [1, D], 'w'))), elementwiseRef('mul', sum, bias)],
    ];
    for (const [got, want] of checks) expect(relErr(await got, want)).toBeLessThanOrEqual(1e-5);
  });

  it('refuses mismatched shapes and a missing operand', async () => {
    const gpu = await getGpu();
    const a = gpu.upload(new Float32Array(6), [2, 3], 'a');
    expect(() => add(gpu, a, gpu.upload(new Float32Array(2), [2], 'b'))).toThrow(/does not match/);
    expect(() => elementwise(gpu, 'silu_mul', a, null)).toThrow(/two operands/);
    expect(() => add(gpu, a, a, { inPlace: true })).toThrow(/another buffer/);
  });
});
