/** Parsing of numeric flags shared by the commands: a clear message for a bad value. */
import type { Command } from 'commander';
import { resolveShard, type Shard } from '../data/shard.ts';
import { UserError } from '../errors.ts';

export function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
}

export function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UserError(`${name} must be a number, got ${v}`);
  return n;
}

/** commander's collector for a repeatable option. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** `--shard I/N` / `--shards N` (src/data/shard.ts), for the commands that run over a data set. */
export function addShardOptions(cmd: Command): Command {
  return cmd
    .option('--shard <I/N>', 'run part I of N of the items (default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set)')
    .option('--shards <N>', 'the number of parts, with JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)');
}

/** The shard of this process, said on stderr when there is one. */
export function shardOf(o: { shard?: string; shards?: string }): Shard | null {
  const s = resolveShard(o.shard, int('--shards', o.shards, 1));
  if (s) console.error(`phaselens: shard ${s.index}/${s.count} (from ${s.from})`);
  return s;
}
