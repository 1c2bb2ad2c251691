/**
 * The text of `phaselens inspect`: what a checkpoint folder holds and whether it is
 * usable. Layers repeat, so tensors that differ only in their layer index (same dtype
 * and shape) are condensed into one line, e.g.
 * `language_model.model.layers.{0..31}.self_attn.q_proj.weight  F16  [4096, 4096]  ×32`.
 */
import type { CheckpointTensor } from './checkpoint.ts';
import { DTYPE_BYTES, numel } from './safetensors.ts';
import type { CheckpointReport } from './validate.ts';

/** Bytes per element on the GPU after upload (BF16 is widened to F32). */
const UPLOADED_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 4 };

export interface TensorGroup {
  /** Name with layer indices replaced by `{…}`. */
  pattern: string;
  dtype: string;
  shape: number[];
  count: number;
  shards: string[];
}

/** Top-level module a tensor belongs to, for parameter counts (`n` canonical). */
export function moduleOf(n: string): string {
  if (n.startsWith('vision_tower.') || n.startsWith('vision_model.')) return 'vision tower';
  if (n.startsWith('multi_modal_projector.')) return 'projector';
  if (n.startsWith('qformer.') || n === 'query_tokens') return 'q-former';
  if (n.startsWith('language_projection.')) return 'language projection';
  if (n.startsWith('language_model.')) return 'language model';
  return 'other';
}

/** `[0,1,2,3]` → `0..3`; `[0,2,4,6]` → `0,2..6`; otherwise a list. */
function formatIndices(ix: number[]): string {
  if (ix.length === 1) return String(ix[0]);
  const step = ix[1] - ix[0];
  const regular = step > 0 && ix.every((v, i) => i === 0 || v - ix[i - 1] === step);
  if (regular && ix.length > 2) return step === 1 ? `${ix[0]}..${ix.at(-1)}` : `${ix[0]},${ix[1]}..${ix.at(-1)}`;
  return ix.join(',');
}

/** Condenses tensors (in the given order) into groups that differ only in layer index. */
export function groupTensors(tensors: readonly CheckpointTensor[]): TensorGroup[] {
  const groups = new Map<string, { pattern: string; dtype: string; shape: number[]; indices: number[][]; shards: Set<string> }>();
  for (const t of tensors) {
    const indices: number[] = [];
    const pattern = t.name.replace(/\.(\d+)(?=\.)/g, (_, d: string) => {
      indices.push(Number(d));
      return '.{}';
    });
    const key = `${pattern} ${t.dtype} ${t.shape.join(',')}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { pattern, dtype: t.dtype, shape: t.shape, indices: [], shards: new Set() }));
    g.indices.push(indices);
    g.shards.add(t.shard);
  }
  return [...groups.values()].map((g) => {
    let slot = 0;
    const pattern = g.pattern.replace(/\{\}/g, () => {
      const s = slot++;
      const values = [...new Set(g.indices.map((ix) => ix[s]))].sort((a, b) => a - b);
      return values.length === 1 ? String(values[0]) : `{${formatIndices(values)}}`;
    });
    return { pattern, dtype: g.dtype, shape: g.shape, count: g.indices.length, shards: [...g.shards] };
  });
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

/** The full inspect text. `full` lists every tensor instead of condensed groups. */
export function formatReport(dirName: string, r: CheckpointReport, full = false): string {
  const ck = r.checkpoint;
  const order = new Map(r.expected.map((e, i) => [e.name, i]));
  const canonical = (stored: string) => r.match.canonical.get(stored) ?? stored;
  const rank = (t: CheckpointTensor) => order.get(canonical(t.name)) ?? order.size;
  const tensors = [...ck.tensors.values()].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
  const shardNo = new Map(ck.shards.map((s, i) => [s, String(i + 1)]));

  const lines: string[] = [];
  lines.push(`checkpoint ${dirName}`);
  lines.push(`model_type ${r.config.model_type}`);
  lines.push(`layout     ${r.match.layout.id} (${r.match.layout.writtenBy})${r.match.unmatched.length ? ', closest; some names fit no known layout' : ''}`);
  lines.push(...r.summary);
  const shardBytes = new Map<string, number>();
  for (const t of tensors) shardBytes.set(t.shard, (shardBytes.get(t.shard) ?? 0) + t.byteLength);
  lines.push(`files      ${ck.shards.map((s) => `[${shardNo.get(s)}] ${s} (${mb(shardBytes.get(s) ?? 0)})`).join(', ')}`);
  const dtypes = new Map<string, number>();
  for (const t of tensors) dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + 1);
  lines.push(`dtypes     ${[...dtypes].map(([d, n]) => `${d} ×${n}`).join(', ')}`);
  lines.push(`tensors    ${tensors.length} in the checkpoint, ${r.expected.filter((e) => !e.optional).length} expected`);
  lines.push('');

  const rows = [['tensor', 'dtype', 'shape', 'count', 'file']];
  const groups = full ? tensors.map((t) => ({ pattern: t.name, dtype: t.dtype, shape: t.shape, count: 1, shards: [t.shard] })) : groupTensors(tensors);
  for (const g of groups) {
    rows.push([g.pattern, g.dtype, `[${g.shape.join(', ')}]`, g.count > 1 ? `×${g.count}` : '', g.shards.map((s) => shardNo.get(s)).join(',')]);
  }
  lines.push(...table(rows), '');

  const gpuBytes = (t: CheckpointTensor) => numel(t.shape) * (UPLOADED_BYTES[t.dtype] ?? DTYPE_BYTES[t.dtype]);
  const params = new Map<string, number>();
  let total = 0;
  let uploaded = 0;
  let largest = tensors[0];
  for (const t of tensors) {
    const n = numel(t.shape);
    const m = moduleOf(canonical(t.name));
    params.set(m, (params.get(m) ?? 0) + n);
    total += n;
    uploaded += gpuBytes(t);
    if (gpuBytes(t) > gpuBytes(largest)) largest = t;
  }
  lines.push('parameters');
  const prow = [...params].map(([m, n]) => [`  ${m}`, n.toLocaleString('en-US'), `${((100 * n) / total).toFixed(1)}%`]);
  lines.push(...table([...prow, ['  total', total.toLocaleString('en-US'), '']]));
  lines.push(
    `GPU memory for the weights: ${mb(total * 2)} in fp16, ${mb(total * 4)} in fp32; ${mb(uploaded)} as stored (BF16 is widened to fp32 on upload)`,
    `largest tensor: ${largest.name} [${largest.shape.join(', ')}] ${largest.dtype}, ${mb(gpuBytes(largest))} on the GPU ` +
      `(a device whose storage-binding limit is smaller needs it split by rows)`,
  );
  if (r.match.ignored.length) lines.push(`ignored buffers: ${r.match.ignored.join(', ')}`);
  lines.push('');
  lines.push(r.problems.length ? `NOT USABLE:\n  ${r.problems.join('\n  ')}` : 'OK: every tensor is present with the shape config.json implies');
  return lines.join('\n');
}
