/**
 * Writes the weights of an HF checkpoint folder: one `model.safetensors`, or shards
 * `model-0000i-of-0000N.safetensors` plus `model.safetensors.index.json` (the layout
 * `save_pretrained` produces), streaming one tensor at a time.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INDEX_FILE, SINGLE_FILE } from '../src/io/checkpoint.ts';
import { tensorBytes, writeSafetensors, type TensorBytes, type TensorSpec } from '../src/io/safetensors-write.ts';

export interface ShardOptions {
  /** Exactly this many shards of about equal size (1: a single model.safetensors). */
  shards?: number;
  /** Or: as many shards as needed so none exceeds this (HF's max_shard_size; default 5 GB). */
  maxShardBytes?: number;
}

/** Splits tensors, in order, into shards (a tensor is never split). */
export function planShards(tensors: readonly TensorSpec[], opts: ShardOptions): TensorSpec[][] {
  const sizes = tensors.map(tensorBytes);
  const total = sizes.reduce((a, b) => a + b, 0);
  const groups: TensorSpec[][] = [[]];
  let inGroup = 0;
  let before = 0;
  if (opts.shards !== undefined) {
    const n = Math.max(1, Math.min(opts.shards, tensors.length));
    tensors.forEach((t, i) => {
      // close the current shard once it has reached its share, leaving a tensor for each remaining shard
      const left = tensors.length - i;
      if (groups.length < n && groups.at(-1)!.length > 0 && (before >= (total * groups.length) / n || left <= n - groups.length)) groups.push([]);
      groups.at(-1)!.push(t);
      before += sizes[i];
    });
    return groups;
  }
  const max = opts.maxShardBytes ?? 5e9;
  tensors.forEach((t, i) => {
    if (inGroup > 0 && inGroup + sizes[i] > max) {
      groups.push([]);
      inGroup = 0;
    }
    groups.at(-1)!.push(t);
    inGroup += sizes[i];
  });
  return groups;
}

export function shardName(i: number, n: number): string {
  const pad = (k: number) => String(k).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
}

/** Writes the weight files into `dir` (which must exist); returns the file names written. */
export async function writeWeights(
  dir: string,
  tensors: readonly TensorSpec[],
  data: (t: TensorSpec) => TensorBytes | Promise<TensorBytes>,
  opts: ShardOptions = {},
): Promise<string[]> {
  const groups = planShards(tensors, opts);
  const metadata = { format: 'pt' };
  if (groups.length === 1) {
    await writeSafetensors(join(dir, SINGLE_FILE), tensors, data, metadata);
    return [SINGLE_FILE];
  }
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  let total = 0;
  for (const [i, group] of groups.entries()) {
    const file = shardName(i, groups.length);
    await writeSafetensors(join(dir, file), group, data, metadata);
    for (const t of group) {
      weightMap[t.name] = file;
      total += tensorBytes(t);
    }
    files.push(file);
  }
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
  await writeFile(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n');
  return [...files, INDEX_FILE];
}
