/**
 * Token embedding lookup — HF `nn.Embedding` (`model.embed_tokens`): out[r] = table[ids[r]].
 *   ids [n] i32, table [vocab, D] f32|f16 given as row-range parts, out [n, D] f32
 * Kernel: shaders/embedding.wgsl, dispatched once per part (a 7B table, 262 MB in f16, is
 * over lavapipe's 128 MiB binding limit, so the loader hands it over in parts:
 * `Weights.getSplit` returns exactly the `{ tensor, rowStart }[]` taken here).
 *
 * Ids out of [0, vocab) cannot be checked on the GPU without a readback: with a GPU `ids`
 * tensor such rows stay 0. `embeddingFromIds` takes host ids, checks them and throws.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { elemBytes, elementGrid } from './common.ts';

export interface EmbeddingPart {
  /** [rows, D]: vocabulary rows rowStart .. rowStart + rows − 1. */
  tensor: Tensor;
  rowStart: number;
}

/** Alias of EmbeddingPart. */
export type TablePart = EmbeddingPart;

const WG = 256;

/** Checks the parts tile [0, vocab) without gaps or overlaps; returns vocab and D. */
export function tableShape(parts: readonly EmbeddingPart[]): { vocab: number; D: number } {
  if (!parts.length) throw new GpuError('embedding: no table parts');
  const sorted = [...parts].sort((a, b) => a.rowStart - b.rowStart);
  const D = sorted[0].tensor.shape[1];
  let next = 0;
  for (const { tensor, rowStart } of sorted) {
    if (tensor.shape.length !== 2 || tensor.shape[1] !== D) throw new GpuError(`embedding: table part ${tensor} is not [rows, ${D}]`);
    if (tensor.dtype !== 'f32' && tensor.dtype !== 'f16') throw new GpuError(`embedding: table part ${tensor} must be f32 or f16`);
    if (rowStart !== next) throw new GpuError(`embedding: table part ${tensor} starts at row ${rowStart}, expected ${next} (parts must tile the vocabulary)`);
    next += tensor.shape[0];
  }
  return { vocab: next, D };
}

/** Embeds the ids already on the GPU (rows with ids outside the vocabulary come out 0). */
export function embedding(gpu: Gpu, ids: Tensor, tables: readonly EmbeddingPart[] | Tensor, opts: { name?: string } = {}): Tensor {
  const parts: readonly EmbeddingPart[] = 'buffer' in tables ? [{ tensor: tables, rowStart: 0 }] : tables;
  const name = opts.name ?? 'embeds';
  if (ids.dtype !== 'i32') throw new GpuError(`embedding: ids must be i32, got ${ids}`);
  const { vocab, D } = tableShape(parts);
  const n = ids.numel;
  if (n * D > 0xffffffff) throw new GpuError(`embedding: ${n} × ${D} outputs overflow u32 indexing`);
  const out = gpu.tensor([n, D], 'f32', name);
  for (const { tensor, rowStart } of parts) {
    const rows = tensor.shape[0];
    gpu.dispatch({
      kernel: `embedding.${tensor.dtype}`,
      pipeline: { shader: 'embedding.wgsl', defines: { W_F16: tensor.dtype === 'f16', W_BINDING: 2 }, constants: { WG } },
      params: { values: [n, D, rowStart, rows] },
      bindings: [ids, tensor, out],
      workgroups: elementGrid(gpu, n * D, WG),
      shapes: `n=${n} D=${D} rows=${rowStart}..${rowStart + rows - 1} of ${vocab}`,
      flops: 0,
      bytes: 4 * n + (elemBytes(tensor) + 4) * n * D / parts.length,
    });
  }
  return out;
}

/** Embeds host ids: checks every id against the vocabulary first, naming the bad one. */
export function embeddingFromIds(gpu: Gpu, ids: Int32Array | readonly number[], tables: readonly EmbeddingPart[] | Tensor, opts: { name?: string } = {}): Tensor {
  const parts: readonly EmbeddingPart[] = 'buffer' in tables ? [{ tensor: tables, rowStart: 0 }] : tables;
  const name = opts.name ?? 'embeds';
  const { vocab } = tableShape(parts);
  ids.forEach((id: number, i: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new GpuError(`embedding: token id ${id} at position ${i} is outside the vocabulary of ${vocab} rows (valid ids 0..${vocab - 1})`);
    }
  });
  const idt = gpu.upload(Int32Array.from(ids), [ids.length], `${name}.ids`);
  const out = embedding(gpu, idt, parts, { name });
  gpu.release(idt);
  return out;
}
