/**
 * Issue 22 through the real CLI: a run killed mid-item and left unreaped (both the
 * `phaselens` wrapper and its child are zombies under a parent that does not reap) does
 * not fool the re-run, which completes the set; and an item that a live process holds to
 * the end is reported — progress line, summary, report — and the run exits 75, for
 * analyze, knockout and ablate, while merge refuses the folder.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectItems } from '../../src/pipeline/analyze.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { childrenOf, killZeroSucceeds, procState, startUnreaped, until } from '../helpers/procs.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const LOCKS = resolve(import.meta.dirname, '../../src/pipeline/locks.ts');
const COCO = join(import.meta.dirname, '../fixtures/coco_mini');
const DATA = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;
const work = mkdtempSync(join(tmpdir(), 'phaselens-killed-'));
const model = join(work, 'tiny');
const N = 6; // the images shipped in test/fixtures/coco_mini
const analyzeArgs = (out: string, n = N) => [CLI, 'analyze', '--model', model, '--data', DATA, '--limit', String(n), '--chat', '--out', out];

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 6 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const cli = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000, env: { ...process.env, ...env } });
/** Every file under `dir`, hidden ones included, as paths relative to it. */
const allFiles = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name).slice(dir.length + 1));
const results = (out: string) => (existsSync(join(out, 'images')) ? readdirSync(join(out, 'images')).filter((f) => f.endsWith('.json')) : []);

/** A live process holding the locks of `ids` in `out` until killed; resolves once they are taken. */
async function holdLocks(out: string, ids: string[]): Promise<{ pid: number; kill: () => void }> {
  const locks = ids.map((id) => join(out, 'images', `${id}.lock`));
  const code = `const { tryLock } = await import(${JSON.stringify(LOCKS)}); (await import('node:fs')).mkdirSync(${JSON.stringify(join(out, 'images'))}, { recursive: true });
    for (const l of ${JSON.stringify(locks)}) if (!tryLock(l).taken) process.exit(3);
    console.log('held'); setInterval(() => {}, 1000);`;
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok, fail) => {
    p.stdout.once('data', () => ok());
    p.once('exit', (c) => fail(new Error(`lock holder exited ${c}`)));
  });
  return { pid: p.pid!, kill: () => p.kill('SIGKILL') };
}

describe('a killed run left unreaped', () => {
  it('the wrapper and its child SIGKILLed mid-item, zombies both; the re-run at once ends with N results, no lock or temporary file', async () => {
    const out = join(work, 'zombies');
    const { parent, pid } = startUnreaped([process.execPath, ...analyzeArgs(out)]);
    try {
      const wrapper = await pid;
      // wait until the run is mid-item: one result written, a lock held; freeze the child there
      let child = 0;
      let lockPid = 0;
      await until('the run to hold a lock after its first result', () => {
        const files = existsSync(join(out, 'images')) ? readdirSync(join(out, 'images')) : [];
        const lock = files.find((f) => f.endsWith('.lock'));
        if (!lock || !files.some((f) => f.endsWith('.json'))) return false;
        [child] = childrenOf(wrapper);
        if (!child) return false;
        process.kill(child, 'SIGSTOP');
        try {
          lockPid = JSON.parse(readFileSync(join(out, 'images', lock), 'utf8')).pid;
          return true;
        } catch {
          process.kill(child, 'SIGCONT'); // released between the listing and the read: next item
          return false;
        }
      }, 120_000);
      expect(lockPid).toBe(child); // the lock names the process that writes, not the wrapper
      process.kill(wrapper, 'SIGKILL');
      process.kill(child, 'SIGKILL');
      await until('both to be zombies', () => procState(wrapper) === 'Z' && procState(child) === 'Z');
      expect([killZeroSucceeds(wrapper), killZeroSucceeds(child)]).toEqual([true, true]); // what fooled the old check
      const before = results(out).length;
      expect(before).toBeLessThan(N);

      const again = cli(analyzeArgs(out));
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toMatch(new RegExp(`${N - before} analysed, ${before} already done, 0 failed \\(`));
      expect(results(out).sort()).toEqual(selectItems({ data: DATA, limit: N, seed: 0 }).items.map((i) => `${i.id}.json`).sort());
      for (const f of results(out)) JSON.parse(readFileSync(join(out, 'images', f), 'utf8'));
      expect(allFiles(out).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'))).toEqual([]);
      expect(JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8')).n_images).toBe(N);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('an item held by a live process to the end', () => {
  it('analyze reports it with the holder and exits 75; merge refuses the folder; once the holder is gone a re-run completes it', async () => {
    const out = join(work, 'held');
    const [first] = selectItems({ data: DATA, limit: N, seed: 0 }).items;
    const holder = await holdLocks(out, [first.id]);
    try {
      const r = cli(analyzeArgs(out), { PHASELENS_LOCK_WAIT: '1' });
      expect(r.status, r.stderr).toBe(75);
      expect(r.stderr).toContain(`${first.id}: held by pid ${holder.pid} (another process`);
      expect(r.stderr).toMatch(new RegExp(`analyze ${N - 1}/${N} \\(\\d+%\\) .*\\| 1 held by pid ${holder.pid}\\n`));
      expect(r.stderr).toContain(`1 item(s) have no result: ${first.id} (held by pid ${holder.pid})`);
      expect(r.stdout).toMatch(new RegExp(`^${N - 1} analysed, 0 already done, 0 failed, 1 held by other processes`));
      expect(results(out)).toHaveLength(N - 1);
      expect(JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8')).n_images).toBe(N - 1);
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain(`no result: held by pid ${holder.pid}`);

      const m = cli([CLI, 'merge', out, '--out', join(work, 'held-merged')]);
      expect(m.status).toBe(2);
      expect(m.stderr).toContain(`merge: 1 item(s) have neither a result nor a recorded failure: ${first.id} in ${out} (held by pid ${holder.pid}, still running)`);
    } finally {
      holder.kill();
    }
    await until('the holder to exit', () => procState(holder.pid) === null);
    const again = cli(analyzeArgs(out));
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^1 analysed, ${N - 1} already done, 0 failed \\(`));
    expect(allFiles(out).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'))).toEqual([]);
    expect(cli([CLI, 'merge', out, '--out', join(work, 'held-merged')]).status).toBe(0);
  });

  it('knockout and ablate: the same exit 75 naming the item', async () => {
    const [first] = selectItems({ data: DATA, limit: 2, seed: 0 }).items;
    const base = ['--model', model, '--data', DATA, '--limit', '2', '--chat'];
    for (const [name, args] of [
      ['knockout', ['knockout', ...base, '--flow', 'last<-image', '--window', '3']],
      ['ablate', ['ablate', ...base, '--token', 'image', '--max-new-tokens', '2']],
    ] as const) {
      const out = join(work, `held-${name}`);
      const holder = await holdLocks(out, [first.id]);
      try {
        const r = cli([CLI, ...args, '--out', out], { PHASELENS_LOCK_WAIT: '0' });
        expect(r.status, `${name}: ${r.stderr}`).toBe(75);
        expect(r.stderr).toContain(`1 item(s) have no result: ${first.id} (held by pid ${holder.pid})`);
        expect(r.stdout).toMatch(/^1 items, 0 already done, 0 failed, 1 held by other processes/);
        expect(JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8')).n_items).toBe(1);
      } finally {
        holder.kill();
      }
    }
  });
});
