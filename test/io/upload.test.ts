/**
 * uploadTensor on a real WebGPU device (lavapipe here): what lands in the GPU buffer
 * is read back and compared bit for bit — BF16 widened to F32, F16 kept packed (odd
 * element counts padded), F32 as is — across chunk boundaries; row splitting; and
 * the refusal of tensors over the buffer limit or of dtypes kernels cannot read.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { writeSafetensors, type TensorSpec } from '../../src/io/safetensors-write.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { planUpload, uploadTensor } from '../../src/io/upload.ts';
import { getGpu } from '../helpers/gpu.ts';

const root = mkdtempSync(join(tmpdir(), 'phaselens-upload-'));
let device: GPUDevice;
let ckpt: Checkpoint;

/** Deterministic bytes: element i of every tensor is a distinct, exact value. */
const f32 = (n: number) => Float32Array.from({ length: n }, (_, i) => (i % 251) - 125.5 + i / 4096);
const bf16Bits = (n: number) => Uint16Array.from(f32(n), (v) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16);
const f16Bits = (n: number) => Uint16Array.from({ length: n }, (_, i) => (i * 37) & 0x7bff);

const tensors: (TensorSpec & { data: Uint8Array })[] = [
  { name: 'w.f32', dtype: 'F32', shape: [37, 13], data: new Uint8Array(f32(37 * 13).buffer) },
  { name: 'w.bf16', dtype: 'BF16', shape: [33, 7], data: new Uint8Array(bf16Bits(33 * 7).buffer) },
  { name: 'w.f16.odd', dtype: 'F16', shape: [5, 107], data: new Uint8Array(f16Bits(5 * 107).buffer) },
  { name: 'w.f16.big', dtype: 'F16', shape: [300, 64], data: new Uint8Array(f16Bits(300 * 64).buffer) },
  { name: 'ids', dtype: 'I64', shape: [4], data: new Uint8Array(32) },
];

beforeAll(async () => {
  device = (await getGpu()).device;
  const dir = join(root, 'ck');
  mkdirSync(dir);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, (t) => tensors.find((x) => x.name === t.name)!.data);
  ckpt = await Checkpoint.open(nodeDirectory(dir));
});

afterAll(async () => {
  await ckpt?.close();
  rmSync(root, { recursive: true, force: true });
});

async function readBack(buffer: GPUBuffer): Promise<Uint8Array> {
  const staging = device.createBuffer({ size: buffer.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, buffer.size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return out;
}

describe('uploadTensor', () => {
  it('F32 arrives unchanged, read in chunks smaller than the tensor', async () => {
    const t = await uploadTensor(device, ckpt, 'w.f32', { chunkBytes: 100 });
    expect([t.dtype, t.shape, t.buffer.label, t.parts.length]).toEqual(['f32', [37, 13], 'w.f32', 1]);
    expect(t.buffer.usage).toBe(GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    expect(await readBack(t.buffer)).toEqual(tensors[0].data);
    t.buffer.destroy();
  });

  it('BF16 is widened to F32 on the host, exactly', async () => {
    const t = await uploadTensor(device, ckpt, 'w.bf16', { chunkBytes: 12 });
    expect(t.dtype).toBe('f32');
    expect(t.parts[0].byteLength).toBe(33 * 7 * 4);
    const got = new Float32Array((await readBack(t.buffer)).buffer);
    const want = Float32Array.from(bf16Bits(33 * 7), (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]);
    expect(got).toEqual(want);
    // and those are the original f32 values truncated to bf16, within bf16 precision
    const orig = f32(33 * 7);
    for (let i = 0; i < orig.length; i++) expect(Math.abs(got[i] - orig[i])).toBeLessThanOrEqual(Math.abs(orig[i]) * 2 ** -7);
    t.buffer.destroy();
  });

  it('F16 stays packed; an odd element count is padded to whole u32 words', async () => {
    const t = await uploadTensor(device, ckpt, 'w.f16.odd', { chunkBytes: 64 });
    expect(t.dtype).toBe('f16');
    expect(t.parts[0].byteLength).toBe(5 * 107 * 2);
    expect(t.buffer.size).toBe(1072); // 1070 rounded up to a multiple of 4
    const got = await readBack(t.buffer);
    expect(got.subarray(0, 1070)).toEqual(tensors[2].data);
    expect([...got.subarray(1070)]).toEqual([0, 0]);
    t.buffer.destroy();
  });

  it('refuses a tensor over the buffer limit, naming it, its size and the limit', async () => {
    await expect(uploadTensor(device, ckpt, 'w.f16.big', { maxBytes: 10_000 })).rejects.toThrow(
      /tensor w\.f16\.big \[300, 64\] f16 needs 38400 bytes on the GPU, over this device's buffer limit of 10000 bytes \(maxStorageBufferBindingSize \/ maxBufferSize\); it has to be split by rows/,
    );
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    expect(() => planUpload({ name: 'lm_head', dtype: 'F16', shape: [limit, 2], offset: 0, byteLength: limit * 4 }, limit, false)).toThrow(/tensor lm_head .* over this device's buffer limit/);
  });

  it('with split, returns row ranges each within the limit, whose contents join up to the tensor', async () => {
    const t = await uploadTensor(device, ckpt, 'w.f16.big', { split: true, maxBytes: 10_000, chunkBytes: 1000 });
    const rowBytes = 64 * 2;
    expect(t.parts.map((p) => p.rows)).toEqual([
      [0, 78],
      [78, 156],
      [156, 234],
      [234, 300],
    ]);
    expect(t.parts.map((p) => p.shape)).toEqual([[78, 64], [78, 64], [78, 64], [66, 64]]);
    expect(t.parts.map((p) => p.buffer.label)).toEqual(['w.f16.big[0:78]', 'w.f16.big[78:156]', 'w.f16.big[156:234]', 'w.f16.big[234:300]']);
    const joined = new Uint8Array(300 * rowBytes);
    for (const p of t.parts) {
      expect(p.buffer.size).toBeLessThanOrEqual(10_000);
      joined.set((await readBack(p.buffer)).subarray(0, p.byteLength), p.rows[0] * rowBytes);
      p.buffer.destroy();
    }
    expect(joined).toEqual(tensors[3].data);
  });

  it('split keeps every part a multiple of 4 bytes (odd f16 rows) and refuses a row over the limit', () => {
    const plan = planUpload({ name: 'x', dtype: 'F16', shape: [10, 3], offset: 0, byteLength: 60 }, 20, true);
    expect(plan.parts.map((p) => [p.rows, p.gpuBytes])).toEqual([
      [[0, 2], 12],
      [[2, 4], 12],
      [[4, 6], 12],
      [[6, 8], 12],
      [[8, 10], 12],
    ]);
    expect(() => planUpload({ name: 'x', dtype: 'F32', shape: [2, 100], offset: 0, byteLength: 800 }, 256, true)).toThrow(/tensor x \[2, 100\] f32: one row is 400 bytes, over this device's buffer limit of 256 bytes; it cannot be split by rows/);
  });

  it('refuses dtypes kernels cannot read', async () => {
    await expect(uploadTensor(device, ckpt, 'ids')).rejects.toThrow(/tensor ids: dtype I64 cannot be used as a GPU weight \(supported: F32, F16, BF16\)/);
    await expect(uploadTensor(device, ckpt, 'nope')).rejects.toThrow(/checkpoint has no tensor "nope"/);
  });
});
