/**
 * `phaselens slurm` without a cluster: the scripts it writes (GPU request, requeue, logs,
 * quoting of awkward paths, read back by bash itself) and the mistakes it refuses on the
 * login node instead of after the queue.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const COCO = join(import.meta.dirname, '../fixtures/coco_mini');
const work = mkdtempSync(join(tmpdir(), 'phaselens slurm cli '));
const model = join(work, "tiny model's");
const DATA = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;

function cli(args: string[], path = process.env.PATH) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, cwd: work, env: { ...process.env, PATH: path } });
}

/** The words bash reads from the script's `exec` line. */
function execWords(script: string): string[] {
  const line = script.split('\n').find((l) => l.startsWith('exec '))!;
  const r = spawnSync('bash', ['-c', `for w in ${line.slice(5)}; do printf '%s\\0' "$w"; done`], { encoding: 'utf8' });
  return r.stdout.split('\0').slice(0, -1);
}

beforeAll(async () => {
  await makeTiny({ arch: 'llava', seed: 0, out: model });
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('phaselens slurm (scripts)', () => {
  it('writes an array job with one task per shard, a GPU each, requeue and per-task logs, and a merge job', () => {
    const out = join(work, 'out dir');
    const r = cli(['slurm', '--shards', '4', '--time', '02:00:00', '--partition', 'gpu', '--sbatch=--qos=long', '--', 'analyze', '--model', model, '--data', DATA, '--out', out, '--prompt', 'What is "this"?']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('4 shards of 6 items');
    const array = readFileSync(join(out, 'slurm/array.sbatch'), 'utf8');
    for (const l of ['#SBATCH --array=1-4', '#SBATCH --gres=gpu:1', '#SBATCH --requeue', '#SBATCH --open-mode=append', '#SBATCH --time=02:00:00', '#SBATCH --partition=gpu', '#SBATCH --qos=long'])
      expect(array.split('\n')).toContain(l);
    expect(array).toContain(`#SBATCH --output='${join(out, 'slurm/logs')}/%x_%A_%a.log'`);
    expect(execWords(array).slice(1)).toEqual([CLI, 'analyze', '--model', model, '--data', DATA, '--out', out, '--prompt', 'What is "this"?']);
    const merge = readFileSync(join(out, 'slurm/merge.sbatch'), 'utf8');
    expect(merge).not.toContain('--gres');
    expect(execWords(merge).slice(1)).toEqual([CLI, 'merge', out, '--out', out]);
    expect(readFileSync(join(out, 'slurm/submit.sh'), 'utf8')).toContain('--dependency=afterok:"$array"');
    expect(spawnSync('bash', ['-n', join(out, 'slurm/submit.sh')]).status).toBe(0);
  });

  it('--no-gres asks for no GPU; --max-parallel throttles the array', () => {
    const r = cli(['slurm', '--shards', '3', '--no-gres', '--max-parallel', '2', '--jobs', join(work, 'jobs'), '--', 'knockout', '--model', model, '--data', DATA, '--out', 'ko', '--flow', 'last<-image']);
    expect(r.status, r.stderr).toBe(0);
    const array = readFileSync(join(work, 'jobs/array.sbatch'), 'utf8');
    expect(array).not.toContain('--gres');
    expect(array).toContain('#SBATCH --array=1-3%2');
    expect(array).toContain('#SBATCH --job-name=phaselens-knockout');
  });

  it.each([
    [['--', 'dump', '--model', 'm'], /must be one of analyze, knockout, ablate, gate, got "dump"/],
    [['--', 'analyze', '--model', 'M', '--data', DATA, '--out', 'o', '--bogus'], /analyze has no option --bogus/],
    [['--', 'analyze', '--model', 'M', '--out', 'o'], /analyze needs --data/],
    [['--', 'analyze', '--model', 'M', '--data', DATA, '--out', 'o', '--shard', '1/2'], /leave --shard\/--shards out/],
    [['--', 'analyze', '--model', join(work, 'nothing'), '--data', DATA, '--out', 'o'], /no config\.json there/],
    [['--', 'analyze', '--model', 'M', '--data', 'coco:/nope.json:/nope', '--out', 'o'], /nope/],
  ])('refuses %j', (args, message) => {
    const r = cli(['slurm', '--shards', '2', ...args.map((a) => (a === 'M' ? model : a))]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses more shards than items, and says what to do when sbatch is missing', () => {
    const many = cli(['slurm', '--shards', '7', '--', 'analyze', '--model', model, '--data', DATA, '--out', 'o']);
    expect(many.status).toBe(2);
    expect(many.stderr).toContain('--shards 7: the run has only 6 item(s)');
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    const none = cli(['slurm', '--shards', '2', '--submit', '--', 'analyze', '--model', model, '--data', DATA, '--out', 'o'], bin);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/sbatch could not be started .* submit them there with submit\.sh/);
  });
});
