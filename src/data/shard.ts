/**
 * Deterministic sharding of a run's items (`--shard I/N`, 1-based), so N processes — a
 * Slurm job array, a Kubernetes Indexed Job, or a few shells — share one data set:
 * the (sampled) items sorted by id are cut into N contiguous, disjoint parts of sizes
 * differing by at most one; part I is items ⌊(I−1)·n/N⌋ … ⌊I·n/N⌋ − 1. The parts depend
 * only on the set of items and N, so re-runs and resumed runs get the same part.
 *
 * Without `--shard`, the shard comes from the scheduler's environment:
 *   Slurm job arrays:        SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN + 1 of SLURM_ARRAY_TASK_COUNT
 *   Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX + 1 of `--shards N`
 */
import { UserError } from '../errors.ts';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
  /** Where it came from, for the message the run prints. */
  from: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function positive(v: string | undefined, what: string, min: number): number {
  const n = Number(v);
  if (v === undefined || v.trim() === '' || !Number.isInteger(n) || n < min) throw new UserError(`${what} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** The shard of this process, or null for a run over every item. */
export function resolveShard(flag: string | undefined, shards: number | undefined, env: Env = process.env): Shard | null {
  let s: Shard | null = null;
  if (flag !== undefined) {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(flag);
    if (!m) throw new UserError(`--shard ${flag}: expected I/N, e.g. 2/8`);
    s = { index: Number(m[1]), count: Number(m[2]), from: `--shard ${flag}` };
  } else if (env.SLURM_ARRAY_TASK_ID !== undefined) {
    const id = positive(env.SLURM_ARRAY_TASK_ID, 'SLURM_ARRAY_TASK_ID', 0);
    const min = positive(env.SLURM_ARRAY_TASK_MIN ?? '0', 'SLURM_ARRAY_TASK_MIN', 0);
    const count = positive(env.SLURM_ARRAY_TASK_COUNT, 'SLURM_ARRAY_TASK_COUNT', 1);
    s = { index: id - min + 1, count, from: `SLURM_ARRAY_TASK_ID=${id} (min ${min}, count ${count})` };
  } else if (env.JOB_COMPLETION_INDEX !== undefined) {
    if (shards === undefined) throw new UserError('JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give the number of shards with --shards N');
    const i = positive(env.JOB_COMPLETION_INDEX, 'JOB_COMPLETION_INDEX', 0);
    s = { index: i + 1, count: shards, from: `JOB_COMPLETION_INDEX=${i} of --shards ${shards}` };
  } else if (shards !== undefined) {
    throw new UserError('--shards N needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); elsewhere use --shard I/N');
  }
  if (s && (s.count < 1 || s.index < 1 || s.index > s.count)) throw new UserError(`${s.from}: shard ${s.index} of ${s.count} does not exist (shards are 1..${s.count})`);
  return s;
}

/** This shard's items (see the header), in id order; without a shard every item, in its own order. */
export function shardItems<T extends { id: string }>(items: readonly T[], s: Shard | null): T[] {
  const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (!s) return [...items];
  const n = sorted.length;
  return sorted.slice(Math.floor(((s.index - 1) * n) / s.count), Math.floor((s.index * n) / s.count));
}
