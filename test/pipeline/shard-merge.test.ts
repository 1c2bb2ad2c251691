/**
 * Sharded runs and `phaselens merge`: the parts are disjoint, cover every item and do not
 * depend on the file order; the shard comes from `--shard` or from Slurm / Kubernetes
 * environment variables; and merging the shards' folders (or one folder they shared)
 * gives the same aggregate as one process over all items, through the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveShard, shardItems } from '../../src/data/shard.ts';
import { UserError } from '../../src/errors.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { maxDiff, readAggregate } from '../helpers/aggregate.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const COCO = join(import.meta.dirname, '../fixtures/coco_mini');
const DATA = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;
const work = mkdtempSync(join(tmpdir(), 'phaselens-shards-'));
const model = join(work, 'tiny');

function cli(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLURM_') && k !== 'JOB_COMPLETION_INDEX'));
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...clean, ...env } });
  return { code: r.status, err: r.stderr, out: r.stdout };
}

const agg = readAggregate;

describe('shards', () => {
  const items = Array.from({ length: 11 }, (_, i) => ({ id: `img${String((i * 7) % 11).padStart(2, '0')}` }));

  it('cut the id-sorted items into disjoint contiguous parts covering them all, whatever the file order', () => {
    const parts = [1, 2, 3].map((index) => shardItems(items, { index, count: 3, from: 'test' }).map((x) => x.id));
    expect(parts.map((p) => p.length)).toEqual([3, 4, 4]);
    expect(parts.flat()).toEqual(items.map((x) => x.id).sort());
    expect(shardItems([...items].reverse(), { index: 2, count: 3, from: 'test' }).map((x) => x.id)).toEqual(parts[1]);
    expect(shardItems(items, null)).toEqual(items);
  });

  it('come from --shard, Slurm job arrays or Kubernetes Indexed Jobs', () => {
    expect(resolveShard('2/5', undefined, {})).toMatchObject({ index: 2, count: 5 });
    expect(resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_MIN: '5', SLURM_ARRAY_TASK_COUNT: '4' })).toMatchObject({ index: 3, count: 4 });
    expect(resolveShard(undefined, 3, { JOB_COMPLETION_INDEX: '0' })).toMatchObject({ index: 1, count: 3 });
    expect(resolveShard(undefined, undefined, {})).toBeNull();
    for (const [flag, shards, env, msg] of [
      ['2-5', undefined, {}, /expected I\/N/],
      ['6/5', undefined, {}, /does not exist/],
      ['0/5', undefined, {}, /does not exist/],
      [undefined, undefined, { JOB_COMPLETION_INDEX: '1' }, /--shards N/],
      [undefined, 3, {}, /needs JOB_COMPLETION_INDEX/],
      [undefined, undefined, { SLURM_ARRAY_TASK_ID: '1' }, /SLURM_ARRAY_TASK_COUNT/],
    ] as const) {
      expect(() => resolveShard(flag, shards, env as Record<string, string>)).toThrow(UserError);
      expect(() => resolveShard(flag, shards, env as Record<string, string>)).toThrow(msg);
    }
  });
});

describe('merge through the CLI', () => {
  beforeAll(async () => {
    await makeTiny({ arch: 'llava', out: model, seed: 3 });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const base = ['--model', model, '--data', DATA, '--limit', '5', '--chat'];

  it('analyze: three shards (flag, flag, Slurm variables) merged equal one process over all items', () => {
    const one = join(work, 'one');
    expect(cli(['analyze', ...base, '--out', one]).code).toBe(0);
    const parts = [1, 2, 3].map((i) => join(work, `part${i}`));
    expect(cli(['analyze', ...base, '--shard', '1/3', '--out', parts[0]]).err).toMatch(/shard 1\/3 \(from --shard 1\/3\)/);
    expect(cli(['analyze', ...base, '--shard', '2/3', '--out', parts[1]]).code).toBe(0);
    const slurm = cli(['analyze', ...base, '--out', parts[2]], { SLURM_ARRAY_TASK_ID: '12', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_COUNT: '3' });
    expect(slurm.err).toMatch(/shard 3\/3 \(from SLURM_ARRAY_TASK_ID=12/);
    const merged = join(work, 'merged');
    const r = cli(['merge', ...parts, '--out', merged]);
    expect(r.out).toMatch(/merged 5 analyze results from 3 folder/);
    expect(maxDiff(agg(merged), agg(one))).toBeLessThanOrEqual(1e-6);
    expect(readFileSync(join(merged, 'report.html'), 'utf8')).toContain('merged from');
  });

  it('shards sharing one folder merge in place', () => {
    const shared = join(work, 'shared');
    for (const s of ['1/2', '2/2']) expect(cli(['analyze', ...base, '--shard', s, '--out', shared]).code).toBe(0);
    expect(cli(['merge', shared, '--out', shared]).code).toBe(0);
    expect(maxDiff(agg(shared), agg(join(work, 'one')))).toBeLessThanOrEqual(1e-6);
  });

  it('knockout shards merge too', () => {
    const ko = ['knockout', ...base, '--flow', 'last<-image', '--window', '3'];
    const one = join(work, 'ko-one');
    expect(cli([...ko, '--out', one]).code).toBe(0);
    const parts = ['1/2', '2/2'].map((s) => {
      const d = join(work, `ko-${s.replace('/', 'of')}`);
      expect(cli([...ko, '--shard', s, '--out', d]).code).toBe(0);
      return d;
    });
    expect(cli(['merge', ...parts, '--out', join(work, 'ko-merged')]).code).toBe(0);
    expect(maxDiff(agg(join(work, 'ko-merged')), agg(one))).toBeLessThanOrEqual(1e-6);
  });

  it('refuses a shard folder with an item missing (a killed task), naming it', () => {
    const cut = join(work, 'part2-cut');
    cpSync(join(work, 'part2'), cut, { recursive: true });
    const [gone] = readdirSync(join(cut, 'images')).filter((f) => f.endsWith('.json'));
    rmSync(join(cut, 'images', gone));
    const r = cli(['merge', join(work, 'part1'), cut, join(work, 'part3'), '--out', join(work, 'cut-merged')]);
    expect(r.err).toContain(`merge: 1 item(s) have neither a result nor a recorded failure: ${gone.slice(0, -5)} in ${cut};`);
    expect(r.code).toBe(2);
  });

  it('refuses runs made with other options, naming the field', () => {
    const other = join(work, 'other');
    expect(cli(['analyze', ...base, '--topk', '3', '--shard', '1/3', '--out', other]).code).toBe(0);
    const r = cli(['merge', join(work, 'part2'), other, '--out', join(work, 'bad')]);
    expect(r.err).toMatch(/the runs differ in options\.k/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(2);
  });
});
