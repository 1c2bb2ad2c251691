/**
 * Sharded runs on a real Slurm (test/cluster/slurm-cluster.ts): `phaselens slurm --submit`
 * puts a 3-task array of `analyze` shards and the dependent merge job in the queue; the
 * merged aggregate must equal a single-process run over the same items (≤ 1e-6: the
 * shards run the same kernels on the same inputs, so only the order of the final means
 * could differ). Then the same with a task stopped half-way, by preemption
 * (`scontrol requeue`: SIGTERM and back to the queue) and by `scancel` plus a requeue:
 * nothing is lost, and nothing is done twice.
 *
 * Chameleon through the family table: `gate` on a labelled set (separation, attention share
 * and the neighbourhood overlap, whose k-NN runs over every shard's rows at the merge) and
 * `knockout --flow … --from-last` (the random-image token drawn per item id, so the shards
 * draw what one process draws) as 3-task arrays; the merged aggregates equal the unsharded
 * runs' (the same kernels on the same inputs: ≤ 1e-6, as for analyze).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { maxDiff, readAggregate } from '../helpers/aggregate.ts';
import { missingSlurm, startSlurm, type SlurmCluster } from './slurm-cluster.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const COCO = join(import.meta.dirname, '../fixtures/coco_mini');
const work = mkdtempSync(join(tmpdir(), 'phaselens-slurm-run-'));
const model = join(work, 'tiny');
let slurm: SlurmCluster;
let data: string;
let ids: string[];

/** The shipped COCO images twice over (copies under new ids), so each shard has several items to be stopped between. */
function twiceCoco(dir: string): string[] {
  const ann = JSON.parse(readFileSync(join(COCO, 'annotations/captions_val2017.json'), 'utf8'));
  mkdirSync(join(dir, 'images'), { recursive: true });
  const copy = (im: { id: number; file_name: string }) => ({ ...im, id: im.id + 900_000_000, file_name: `copy_${im.file_name}` });
  const images = [...ann.images, ...ann.images.map(copy)];
  for (const im of ann.images) {
    copyFileSync(join(COCO, 'val2017', im.file_name), join(dir, 'images', im.file_name));
    copyFileSync(join(COCO, 'val2017', im.file_name), join(dir, 'images', copy(im).file_name));
  }
  const annotations = [...ann.annotations, ...ann.annotations.map((a: { image_id: number; id: number }) => ({ ...a, image_id: a.image_id + 900_000_000, id: a.id + 900_000_000 }))];
  writeFileSync(join(dir, 'captions.json'), JSON.stringify({ ...ann, images, annotations }));
  return images.map((im) => im.file_name.replace(/\.\w+$/, ''));
}

function cli(args: string[], env: NodeJS.ProcessEnv = slurm.env) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000, env, cwd: work });
}

/** JobState of every job (array tasks one by one) with these ids. */
function states(jobIds: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of slurm.run('squeue', ['-h', '-t', 'all', '-j', jobIds.join(','), '-o', '%i %T %r']).trim().split('\n')) {
    const [id, state, ...reason] = l.trim().split(/\s+/);
    if (id) out[id] = `${state} ${reason.join(' ')}`.trim();
  }
  return out;
}

async function until(what: string, ok: () => boolean, ms = 240_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; jobs: ${slurm.run('squeue', ['-t', 'all'])}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const finished = (s: string) => /^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)/.test(s);

/** Submits the run through `phaselens slurm`; returns the array and merge job ids. */
function submit(out: string, command = ['analyze', '--model', model, '--data', data]): { array: string; merge: string } {
  const r = cli(['slurm', '--shards', '3', '--no-gres', '--submit', '--', ...command, '--out', out]);
  expect(r.status, r.stderr).toBe(0);
  const m = /submitted array job (\d+) \(3 tasks\) and merge job (\d+)/.exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  return { array: m![1], merge: m![2] };
}

const done = (out: string, part: string[]) => part.filter((id) => existsSync(join(out, 'images', `${id}.json`))).length;
const taskLog = (out: string, job: string, task: number) => readFileSync(join(out, 'slurm/logs', `phaselens-analyze_${job}_${task}.log`), 'utf8');

/** Stops task 2 half-way with `stop`, and checks what the task left behind before it is run again. */
async function stopShard2(out: string, array: string, stop: (task: string) => void): Promise<void> {
  const shard2 = [...ids].sort().slice(4, 8);
  await until('the first result of shard 2', () => done(out, shard2) >= 1);
  stop(`${array}_2`);
  await until('task 2 to stop', () => /stopped by SIGTERM/.test(taskLog(out, array, 2)));
  const left = shard2.length - done(out, shard2);
  expect(left, 'task 2 was stopped before it finished its shard').toBeGreaterThan(0);
  // what is there is whole: every result file parses
  for (const f of readdirSync(join(out, 'images')).filter((f) => f.endsWith('.json'))) JSON.parse(readFileSync(join(out, 'images', f), 'utf8'));
}

beforeAll(async () => {
  const missing = missingSlurm();
  if (missing.length) throw new Error(`Slurm is not installed (${missing.join(', ')}): run bash .ci/system-deps.sh (Debian's slurm-wlm and munge)`);
  slurm = startSlurm();
  await makeTiny({ arch: 'llava', seed: 0, out: model });
  ids = twiceCoco(join(work, 'coco'));
  data = `coco:${join(work, 'coco/captions.json')}:${join(work, 'coco/images')}`;
  const r = cli(['analyze', '--model', model, '--data', data, '--out', join(work, 'one')], process.env);
  expect(r.status, r.stderr).toBe(0);
}, 300_000);

/** Waits for the merge job of a submitted run; every task and the merge must complete. */
async function merged(jobs: { array: string; merge: string }): Promise<void> {
  await until('the merge job', () => finished(states([jobs.merge])[jobs.merge] ?? ''));
  const s = states([jobs.array, jobs.merge]);
  expect(s).toEqual({ [`${jobs.array}_1`]: 'COMPLETED None', [`${jobs.array}_2`]: 'COMPLETED None', [`${jobs.array}_3`]: 'COMPLETED None', [jobs.merge]: 'COMPLETED None' });
}

afterAll(() => {
  slurm?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('phaselens slurm on a real single-node Slurm', () => {
  it('a 3-task array of analyze shards and the dependent merge give the single-process aggregate', async () => {
    const out = join(work, 'array');
    const jobs = submit(out);
    await until('the merge job', () => finished(states([jobs.merge])[jobs.merge] ?? ''));
    const s = states([jobs.array, jobs.merge]);
    expect(s).toEqual({ [`${jobs.array}_1`]: 'COMPLETED None', [`${jobs.array}_2`]: 'COMPLETED None', [`${jobs.array}_3`]: 'COMPLETED None', [jobs.merge]: 'COMPLETED None' });
    for (const task of [1, 2, 3]) expect(taskLog(out, jobs.array, task)).toContain(`shard ${task}/3 (from SLURM_ARRAY_TASK_ID=${task}`);
    expect(maxDiff(readAggregate(out), readAggregate(join(work, 'one')))).toBeLessThanOrEqual(1e-6);
  }, 300_000);

  it('a task preempted half-way (scontrol requeue) resumes; the merge then runs by itself and equals the single run', async () => {
    const out = join(work, 'preempted');
    const jobs = submit(out);
    await stopShard2(out, jobs.array, (task) => slurm.run('scontrol', ['requeue', task]));
    // a requeued job waits two minutes before it may start again; let it start now — once it
    // is pending again (an update while it is still completing is lost, and the test waited)
    await until('task 2 to be requeued', () => (states([jobs.array])[`${jobs.array}_2`] ?? '').startsWith('PENDING'));
    slurm.run('scontrol', ['update', `jobid=${jobs.array}_2`, 'StartTime=now']);
    await until('the merge job', () => finished(states([jobs.merge])[jobs.merge] ?? ''));
    expect(states([jobs.merge])[jobs.merge]).toBe('COMPLETED None');
    const log = taskLog(out, jobs.array, 2);
    expect(log).toContain('attempt 2');
    expect(log).toMatch(/resuming in .*: [1-3] of 4 already done/);
    expect(maxDiff(readAggregate(out), readAggregate(join(work, 'one')))).toBeLessThanOrEqual(1e-6);
  }, 300_000);

  it('a task scancelled half-way and requeued resumes; its merge cannot run (afterok), a resubmitted merge equals the single run', async () => {
    const out = join(work, 'cancelled');
    const jobs = submit(out);
    await stopShard2(out, jobs.array, (task) => slurm.run('scancel', [task]));
    await until('task 2 to be cancelled', () => (states([jobs.array])[`${jobs.array}_2`] ?? '').startsWith('CANCELLED'));
    slurm.run('scontrol', ['requeue', `${jobs.array}_2`]);
    slurm.run('scontrol', ['update', `jobid=${jobs.array}_2`, 'StartTime=now']);
    await until('task 2 to finish', () => finished(states([jobs.array])[`${jobs.array}_2`] ?? ''));
    expect(states([jobs.array])[`${jobs.array}_2`]).toBe('COMPLETED None');
    expect(taskLog(out, jobs.array, 2)).toMatch(/resuming in .*: [1-3] of 4 already done/);
    // Slurm's afterok holds for a task that ended well; a cancelled one fails it for good
    await until('the merge job to be held', () => /DependencyNeverSatisfied/.test(states([jobs.merge])[jobs.merge] ?? ''));
    slurm.run('scancel', [jobs.merge]);
    const merge = slurm.run('sbatch', ['--parsable', join(out, 'slurm/merge.sbatch')]).trim().split(';')[0];
    await until('the resubmitted merge', () => finished(states([merge])[merge] ?? ''));
    expect(states([merge])[merge]).toBe('COMPLETED None');
    expect(maxDiff(readAggregate(out), readAggregate(join(work, 'one')))).toBeLessThanOrEqual(1e-6);
  }, 300_000);
});

describe('Chameleon through the family table: gate and knockout shards on Slurm', () => {
  const cham = join(work, 'chameleon');
  let labels: string;
  const gate = () => ['gate', '--model', cham, '--data', labels, '--k', '3', '--bins', '512'];
  const knockout = () => ['knockout', '--model', cham, '--data', data, '--limit', '3', '--flow', 'text<-end-of-image', '--flow', 'text<-random-image', '--from-last'];
  // everything but how the run went (a merged run's data set is "merged from …")
  const aggregate = (dir: string) => ({ ...readAggregate(dir), run: undefined });

  beforeAll(async () => {
    await makeTiny({ arch: 'chameleon', seed: 0, out: cham });
    // the twelve images, two classes (the copies share their original's label)
    const lines = [...ids].sort().map((id, i) => JSON.stringify({ image: `${id}.jpg`, id, label: `c${i % 2}` }));
    writeFileSync(join(work, 'labels.jsonl'), lines.join('\n') + '\n');
    labels = `labels:${join(work, 'labels.jsonl')}:${join(work, 'coco/images')}`;
    for (const [cmd, out] of [[gate(), 'gate-one'], [knockout(), 'ko-one']] as const) {
      const r = cli([...cmd, '--out', join(work, out)], process.env);
      expect(r.status, r.stderr).toBe(0);
    }
  }, 300_000);

  it('gate on a labelled set: 3 shards merged equal the unsharded run, overlap included', async () => {
    const out = join(work, 'gate-array');
    await merged(submit(out, gate()));
    const one = aggregate(join(work, 'gate-one'));
    expect(one.n_items).toBe(12);
    expect(Object.keys(one.attention.groups)).toEqual(['start-of-image', 'internal-image', 'last-image', 'end-of-image']);
    expect(one.neighbourhood_overlap, 'the unsharded run computed the overlap').toBeDefined();
    expect(maxDiff(aggregate(out), one)).toBeLessThanOrEqual(1e-6);
  }, 300_000);

  it('knockout --from-last: 3 shards merged equal the unsharded run', async () => {
    const out = join(work, 'ko-array');
    await merged(submit(out, knockout()));
    const one = readAggregate(join(work, 'ko-one'));
    expect(one.mode).toBe('from-last');
    expect(one.n_items).toBe(3);
    expect(Object.keys(one.flows)).toEqual(['text<-end-of-image', 'text<-random-image']);
    expect(maxDiff(readAggregate(out), one)).toBeLessThanOrEqual(1e-6);
  }, 300_000);
});
