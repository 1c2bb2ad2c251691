/**
 * Slurm job scripts for a sharded run (`phaselens slurm`): an array job with one task per
 * shard, and a merge job that runs once every task has succeeded.
 *
 * Each array task runs the same phaselens command; the shard comes from
 * SLURM_ARRAY_TASK_ID (src/data/shard.ts), so the script holds no per-task state and a
 * requeued task resumes by running it again (finished items are skipped). The node
 * process is `exec`ed so that the SIGTERM Slurm sends at preemption or the time limit
 * reaches it directly; `--requeue` lets Slurm put a preempted task back in the queue and
 * `--open-mode=append` keeps the log of its earlier attempt. All tasks write into one
 * output folder (per-item locks make that safe, src/pipeline/locks.ts), which the merge
 * job then finishes in place: `phaselens merge OUT --out OUT`.
 */

export interface SlurmRun {
  /** Job name (`#SBATCH --job-name`); the merge job is NAME-merge. */
  name: string;
  /** Number of array tasks = shards. */
  shards: number;
  /** At most this many tasks at once (`--array=1-N%K`). */
  maxParallel?: number;
  /** How to start phaselens on a compute node: the node binary and the CLI file, absolute. */
  phaselens: readonly string[];
  /** The phaselens command of each task, without --shard (e.g. ['analyze', '--model', …]). */
  command: readonly string[];
  /** The run's output folder, absolute. */
  out: string;
  /** Working directory of the jobs (relative paths in `command` are relative to it). */
  workdir: string;
  /** Folder for the per-task logs, absolute. */
  logs: string;
  /** `--gres` of each array task (e.g. 'gpu:1'); null for none. */
  gres: string | null;
  /** More `#SBATCH` options for both jobs, e.g. ['--partition=gpu', '--time=02:00:00']. */
  sbatch: readonly string[];
}

/** A word for bash: kept as is when it is plainly safe, single-quoted otherwise. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const line = (words: readonly string[]) => words.map(shellQuote).join(' ');

function header(r: SlurmRun, name: string, log: string, extra: string[]): string[] {
  return [
    '#!/bin/bash',
    `#SBATCH --job-name=${shellQuote(name)}`,
    `#SBATCH --chdir=${shellQuote(r.workdir)}`,
    `#SBATCH --output=${shellQuote(`${r.logs}/${log}`)}`,
    '#SBATCH --open-mode=append',
    ...extra.map((o) => `#SBATCH ${o}`),
    ...r.sbatch.map((o) => `#SBATCH ${shellQuote(o)}`),
  ];
}

/** The array job: task I runs shard I/N of the command. */
export function arrayScript(r: SlurmRun): string {
  const array = `1-${r.shards}${r.maxParallel ? `%${r.maxParallel}` : ''}`;
  const extra = [`--array=${array}`, '--ntasks=1', '--requeue', ...(r.gres ? [`--gres=${r.gres}`] : [])];
  return [
    ...header(r, r.name, '%x_%A_%a.log', extra),
    '# one task per shard: phaselens takes shard SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT',
    'echo "phaselens: task ${SLURM_ARRAY_TASK_ID} of job ${SLURM_ARRAY_JOB_ID} on $(hostname), attempt $((${SLURM_RESTART_COUNT:-0} + 1)), $(date -Is)"',
    `exec ${line([...r.phaselens, ...r.command])}`,
    '',
  ].join('\n');
}

/** The merge job (submitted with --dependency=afterok on the array job). */
export function mergeScript(r: SlurmRun): string {
  return [
    ...header(r, `${r.name}-merge`, '%x_%j.log', ['--ntasks=1']),
    `exec ${line([...r.phaselens, 'merge', r.out, '--out', r.out])}`,
    '',
  ].join('\n');
}

/** A shell script that submits both, for a login node where phaselens is not run directly. */
export function submitScript(arrayFile: string, mergeFile: string): string {
  return [
    '#!/bin/bash',
    '# submits the array job, then the merge job that waits for every task to succeed',
    'set -euo pipefail',
    `array=$(sbatch --parsable ${shellQuote(arrayFile)} | cut -d';' -f1)`,
    `merge=$(sbatch --parsable --dependency=afterok:"$array" ${shellQuote(mergeFile)} | cut -d';' -f1)`,
    'echo "array job $array, merge job $merge"',
    '',
  ].join('\n');
}
