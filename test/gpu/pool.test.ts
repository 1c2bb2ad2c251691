/**
 * The runtime's reuse of what a decode step makes (src/gpu/context.ts): freed buffers are
 * pooled by size and handed to outputs their kernel writes in full; bind groups are cached
 * per (pipeline, params, buffers); errors are caught per submission. Real lavapipe device.
 */
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/gpu/node.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { elementwise } from '../../src/ops/elementwise.ts';
import { linear } from '../../src/ops/linear.ts';
import { linearRef } from '../reference/matmul.ts';
import { randn, relErr } from '../helpers/gpu.ts';

/** A decode-like step: linear, silu, add; outputs allocated, inputs released as they go. */
function step(gpu: Gpu, x: Tensor, w: Tensor): Tensor {
  const h = linear(gpu, x, w);
  const a = elementwise(gpu, 'silu', h, null);
  gpu.release(h);
  const y = elementwise(gpu, 'add', a, x);
  gpu.release(a);
  return y;
}

describe('buffer pool, bind-group cache, per-submission errors', () => {
  it('a second identical step creates no buffers and no bind groups, and computes the same', async () => {
    const gpu = await createNodeGpu();
    const [M, K] = [1, 64];
    const xs = randn(M * K, 1);
    const ws = randn(K * K, 2, 0.2);
    const x = gpu.upload(xs, [M, K], 'x');
    const w = gpu.upload(ws, [K, K], 'w');
    const want = linearRef(xs, ws, M, K, K, { act: 'silu', residual: xs });
    const y1 = step(gpu, x, w);
    expect(relErr(await gpu.readF32(y1), want)).toBeLessThanOrEqual(1e-5);
    gpu.release(y1);
    await gpu.sync();
    const before = { ...gpu.created };
    const y2 = step(gpu, x, w);
    expect(relErr(await gpu.readF32(y2), want)).toBeLessThanOrEqual(1e-5);
    expect(gpu.created).toEqual(before);
    gpu.destroy();
  });

  it('a buffer freed while recorded work still reads it is not handed out before that work is submitted', async () => {
    const gpu = await createNodeGpu();
    const xs = randn(256, 3);
    const a = gpu.upload(xs, [256], 'a');
    const y = elementwise(gpu, 'scale', a, null, 2);
    gpu.release(a); // y's dispatch is recorded, not submitted
    const b = gpu.tensor([256], 'f32', 'b', { fullyWritten: true });
    expect(b.buffer).not.toBe(a.buffer);
    gpu.write(b, new Float32Array(256).fill(7));
    expect(Array.from(await gpu.readF32(y))).toEqual(Array.from(xs, (v) => Math.fround(2 * v)));
    // after the submit, the freed buffer is reused for a fully written output, as it is
    const c = gpu.tensor([256], 'f32', 'c', { fullyWritten: true });
    expect(c.buffer).toBe(a.buffer);
    // releasing the stale tensor again does not free c's buffer
    gpu.release(a);
    const d = gpu.tensor([256], 'f32', 'd', { fullyWritten: true });
    expect(d.buffer).not.toBe(c.buffer);
    gpu.destroy();
  });

  it('a tensor that is not fully written is zeroed: a small one reuses a pooled buffer, a large one is made anew', async () => {
    const gpu = await createNodeGpu();
    const a = gpu.upload(new Float32Array(64).fill(5), [64], 'a');
    const big = gpu.upload(new Float32Array(32768).fill(5), [32768], 'big'); // 128 KiB: over the host-zeroing limit
    gpu.release(a, big);
    await gpu.sync();
    const z = gpu.tensor([64], 'f32', 'z');
    expect(z.buffer).toBe(a.buffer);
    const zb = gpu.tensor([32768], 'f32', 'zb');
    expect(zb.buffer).not.toBe(big.buffer);
    const [zs, zbs] = await gpu.readAll([z, zb]);
    expect(Array.from(zs)).toEqual(new Array(64).fill(0));
    expect(zbs.every((v) => v === 0)).toBe(true);
    gpu.destroy();
  });

  it('consecutive dispatches share one compute pass; a copy ends it; one submission per readback', async () => {
    const gpu = await createNodeGpu();
    const xs = randn(256, 4);
    const x = gpu.upload(xs, [256], 'x');
    await gpu.sync();
    const r0 = { ...gpu.recorded };
    const a = elementwise(gpu, 'scale', x, null, 2);
    const b = elementwise(gpu, 'add', a, x);
    const c = gpu.tensor([256], 'f32', 'c', { fullyWritten: true });
    gpu.copy(b, c);
    const d = elementwise(gpu, 'scale', c, null, 0.5);
    const e = elementwise(gpu, 'add', d, b);
    const [got] = await gpu.readAll([e]);
    const delta = Object.fromEntries(Object.entries(gpu.recorded).map(([k, v]) => [k, v - r0[k as keyof typeof r0]]));
    expect(delta).toEqual({ dispatches: 4, copies: 1, passes: 2, submissions: 1 });
    const want = xs.map((v) => {
      const bv = Math.fround(Math.fround(2 * v) + v);
      return Math.fround(Math.fround(0.5 * bv) + bv);
    });
    expect(Array.from(got)).toEqual(Array.from(want));
    gpu.destroy();
  });

  it('a write to a tensor that recorded work reads lands after that work', async () => {
    const gpu = await createNodeGpu();
    const xs = randn(64, 5);
    const a = gpu.upload(xs, [64], 'a');
    const y = elementwise(gpu, 'scale', a, null, 2); // recorded, not submitted
    gpu.write(a, new Float32Array(64).fill(7));
    const [ys, as] = await gpu.readAll([y, a]);
    expect(Array.from(ys)).toEqual(Array.from(xs, (v) => Math.fround(2 * v)));
    expect(Array.from(as)).toEqual(new Array(64).fill(7));
    gpu.destroy();
  });

  it('new params for the same pipeline and buffers: a new buffer while the old is in use, rewritten once it is submitted', async () => {
    const gpu = await createNodeGpu();
    const xs = randn(64, 6);
    const y = gpu.upload(xs, [64], 'y');
    const scale = (s: number) => elementwise(gpu, 'scale', y, null, s, { inPlace: true });
    scale(2);
    scale(3); // same pipeline and buffers as the last, other params, same submission
    await gpu.sync();
    const before = { ...gpu.created };
    const buffers = gpu.created.buffers;
    scale(5); // a later submission: the params buffer of the last scale(3) is rewritten, its bind group reused
    scale(5); // the same content: the same buffer
    const got = await gpu.readF32(y);
    expect(gpu.created).toEqual({ ...before, buffers });
    expect(Array.from(got)).toEqual(Array.from(xs, (v) => Math.fround(5 * Math.fround(5 * Math.fround(3 * Math.fround(2 * v))))));
    gpu.destroy();
  });

  it('an error in one submission names the kernel; the next submission is clean', async () => {
    const gpu = await createNodeGpu();
    const x = gpu.upload(randn(8, 1), [2, 4], 'x');
    gpu.dispatch({
      kernel: 'bad.kernel',
      pipeline: { shader: 'matmul.wgsl', defines: { TILE4X4: true, VEC4: true, W_F16: false, W_BINDING: 2, BIAS: true, RESIDUAL: false, ACT: 0 } },
      params: { values: [2, 2, 4, 0, 1, 2] },
      bindings: [x, x, null, null, x], // BIAS declared, binding 3 missing
      workgroups: [1, 1],
      shapes: 'planted',
    });
    await expect(gpu.sync()).rejects.toThrow(/GPU validation error: [\s\S]*in the submission of these dispatches[\s\S]*bad\.kernel \(planted\) buffers x/);
    const y = elementwise(gpu, 'scale', x, null, 3);
    expect((await gpu.readF32(y))[0]).toBeCloseTo(3 * (await gpu.readF32(x))[0], 6);
    gpu.destroy();
  });
});
