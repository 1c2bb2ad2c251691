// The resumable per-image runner (src/analysis/runner.ts) and its progress display
// (src/analysis/progress.ts): atomic results, resume, error recording, bugs stopping the run.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { encode as encodePng } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { createProgress, formatDuration, formatRate } from '../../src/pipeline/progress.ts';
import { ERRORS_FILE, readErrors, readResult, resultPath, runItems, writeFileAtomic, type RunItem } from '../../src/pipeline/runner.ts';
import { loadCoco, loadFolder } from '../../src/data/index.ts';
import { UserError } from '../../src/errors.ts';
import { readImageFile } from '../../src/io/load-node.ts';

const tmp = mkdtempSync(join(tmpdir(), 'phaselens-runner-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let nDirs = 0;
const freshDir = (name = 'out') => join(tmp, `${nDirs++}-${name}`);

const items = (...ids: string[]): RunItem[] => ids.map((id) => ({ id, image: `/imgs/${id}.png` }));
const quiet = { progress: false } as const;

/** Every file under OUT/images, hidden ones included. */
const listImages = (out: string) => readdirSync(join(out, 'images')).sort();

function collect(): { stream: PassThrough & { isTTY?: boolean }; text: () => string } {
  const stream = new PassThrough();
  let s = '';
  stream.on('data', (b: Buffer) => (s += b.toString()));
  return { stream, text: () => s };
}

describe('runItems', () => {
  it('writes one JSON per item and reports counts', async () => {
    const out = freshDir();
    const seen: string[] = [];
    const summary = await runItems(items('a', 'b', 'c'), out, async (it) => ({ id: it.id, values: [1, 2.5] }), { ...quiet, onResult: (id) => seen.push(id) });
    expect(summary).toEqual({ total: 3, done: 3, skipped: 0, failed: 0, errors: [], missing: [], stopped: false });
    expect(listImages(out)).toEqual(['a.json', 'b.json', 'c.json']);
    expect(JSON.parse(readFileSync(resultPath(out, 'b'), 'utf8'))).toEqual({ id: 'b', values: [1, 2.5] });
    expect(readResult(out, 'c')).toEqual({ id: 'c', values: [1, 2.5] });
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(JSON.parse(readFileSync(join(out, ERRORS_FILE), 'utf8'))).toEqual({ errors: [] });
  });

  it('resumes: skips items whose JSON exists and parses, redoes broken ones', async () => {
    const out = freshDir();
    await runItems(items('a', 'b'), out, async (it) => ({ id: it.id, run: 1 }), quiet);
    writeFileSync(resultPath(out, 'b'), '{"id": "b", "ru'); // damaged by something else
    const calls: string[] = [];
    const log = collect();
    const summary = await runItems(items('a', 'b', 'c'), out, async (it) => (calls.push(it.id), { id: it.id, run: 2 }), { progress: { stream: log.stream, tty: false } });
    expect(calls).toEqual(['b', 'c']);
    expect(summary).toMatchObject({ total: 3, done: 2, skipped: 1, failed: 0 });
    expect(readResult(out, 'a')).toEqual({ id: 'a', run: 1 });
    expect(readResult(out, 'b')).toEqual({ id: 'b', run: 2 });
    expect(log.text()).toMatch(/resuming in .*: 1 of 3 already done, 2 to go/);
    const again = await runItems(items('a', 'b', 'c'), out, async () => {
      throw new Error('should not run');
    }, quiet);
    expect(again).toMatchObject({ done: 0, skipped: 3 });
  });

  it('records UserErrors in errors.json and goes on; a later success removes the entry', async () => {
    const out = freshDir();
    const fail = new Set(['b', 'd']);
    const log = collect();
    const s1 = await runItems(items('a', 'b', 'c', 'd'), out, async (it) => {
      if (fail.has(it.id)) throw new UserError(`${it.image}: cannot read (ENOENT)`);
      return { id: it.id };
    }, { progress: { stream: log.stream, tty: false } });
    expect(s1).toMatchObject({ total: 4, done: 2, skipped: 0, failed: 2 });
    expect(s1.errors.map((e) => [e.id, e.image, e.message])).toEqual([
      ['b', '/imgs/b.png', '/imgs/b.png: cannot read (ENOENT)'],
      ['d', '/imgs/d.png', '/imgs/d.png: cannot read (ENOENT)'],
    ]);
    expect(listImages(out)).toEqual(['a.json', 'c.json']);
    const recorded = readErrors(out);
    expect(recorded.map((e) => e.id)).toEqual(['b', 'd']);
    expect(Number.isNaN(Date.parse(recorded[0].time))).toBe(false);
    expect(log.text()).toContain('b: /imgs/b.png: cannot read (ENOENT)');
    expect(log.text()).toMatch(/4\/4 \(100%\).*2 failed/);

    // Fix b; d still fails; an item of another run ('z') keeps its entry.
    writeFileSync(join(out, ERRORS_FILE), JSON.stringify({ errors: [...recorded, { id: 'z', message: 'old', time: '2020-01-01T00:00:00Z' }] }));
    fail.delete('b');
    const s2 = await runItems(items('a', 'b', 'c', 'd'), out, async (it) => {
      if (fail.has(it.id)) throw new UserError('still broken');
      return { id: it.id };
    }, quiet);
    expect(s2).toMatchObject({ done: 1, skipped: 2, failed: 1 });
    expect(readErrors(out).map((e) => [e.id, e.message])).toEqual([
      ['d', 'still broken'],
      ['z', 'old'],
    ]);
  });

  it('stops on a bug: the error propagates, no partial or temporary file is left, errors.json stays valid', async () => {
    const out = freshDir();
    const bug = runItems(items('a', 'b', 'c', 'd'), out, async (it) => {
      if (it.id === 'b') throw new UserError('bad image');
      if (it.id === 'c') throw new TypeError('undefined is not a function');
      return { id: it.id };
    }, quiet);
    await expect(bug).rejects.toThrow(TypeError);
    expect(listImages(out)).toEqual(['a.json']);
    expect(readErrors(out).map((e) => e.id)).toEqual(['b']);

    // A result that cannot be serialised is a bug too, found before any file is opened.
    const out2 = freshDir();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(runItems(items('x'), out2, async () => circular, quiet)).rejects.toThrow(/circular/i);
    expect(listImages(out2)).toEqual([]);
    await expect(runItems(items('x'), out2, async () => [1, 2] as unknown as object, quiet)).rejects.toThrow(/not a JSON object/);
    await expect(runItems(items('x'), out2, async () => null as unknown as object, quiet)).rejects.toThrow(/not a JSON object/);
    expect(listImages(out2)).toEqual([]);
  });

  it('removes the temporary file when the final rename fails, and stale ones at start', async () => {
    const out = freshDir();
    mkdirSync(join(out, 'images', 'a.json'), { recursive: true }); // rename onto a folder fails
    // left by a killed run: a temporary name made by a process that has exited since
    const { spawnSync } = await import('node:child_process');
    const locks = resolve(import.meta.dirname, '../../src/pipeline/locks.ts');
    const dead = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const { tempPath } = await import(${JSON.stringify(locks)}); (await import('node:fs')).writeFileSync(tempPath(${JSON.stringify(join(out, 'images', 'q.json'))}), '{"half": ');`], { encoding: 'utf8' });
    expect(dead.status, dead.stderr).toBe(0);
    expect(listImages(out)).toHaveLength(2);
    await expect(runItems(items('a'), out, async () => ({ ok: true }), quiet)).rejects.toThrow();
    expect(listImages(out)).toEqual(['a.json']); // just the folder: stale and new temporary files gone
  });

  it('writeFileAtomic replaces the whole file or nothing', async () => {
    const dir = freshDir('atomic');
    mkdirSync(dir);
    const p = join(dir, 'r.json');
    await writeFileAtomic(p, 'first');
    await writeFileAtomic(p, 'second');
    expect(readFileSync(p, 'utf8')).toBe('second');
    expect(readdirSync(dir)).toEqual(['r.json']);
    await expect(writeFileAtomic(join(dir, 'no', 'r.json'), 'x')).rejects.toThrow(/ENOENT/);
  });

  it('refuses ids that are not file-name safe or repeat (a bug in the caller)', async () => {
    const out = freshDir();
    await expect(runItems(items('a/b'), out, async () => ({}), quiet)).rejects.toThrow(/not file-name safe/);
    await expect(runItems(items('.x'), out, async () => ({}), quiet)).rejects.toThrow(/not file-name safe/);
    await expect(runItems(items('a', 'a'), out, async () => ({}), quiet)).rejects.toThrow(/appears twice/);
    expect(existsSync(out)).toBe(false);
  });

  it('runs real data: COCO fixture images decode; an unreadable image is recorded and the run goes on', async () => {
    const dir = freshDir('folder');
    mkdirSync(dir);
    writeFileSync(join(dir, 'good.png'), encodePng({ width: 3, height: 2, channels: 3, depth: 8, data: new Uint8Array(18).fill(7) }));
    writeFileSync(join(dir, 'broken.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    writeFileSync(join(dir, 'empty.jpg'), new Uint8Array(0));
    const coco = loadCoco(resolve('test/fixtures/coco_mini/annotations/captions_val2017.json'), resolve('test/fixtures/coco_mini/val2017')).slice(0, 2);
    coco.push({ ...coco[0], id: 'missing', image: join(dir, 'missing.jpg') });
    const all = [...loadFolder(dir), ...coco];
    const out = freshDir();
    const s = await runItems(all, out, async (it) => {
      const im = readImageFile(it.image);
      return { image: it.image, width: im.width, height: im.height, captions: it.captions.length };
    }, quiet);
    expect(s).toMatchObject({ total: 6, done: 3, failed: 3 });
    expect(readErrors(out).map((e) => e.id).sort()).toEqual(['broken', 'empty', 'missing']);
    expect(readResult(out, 'good')).toMatchObject({ width: 3, height: 2, captions: 0 });
    expect(readResult(out, '000000117645')).toMatchObject({ width: 640, height: 480, captions: 5 });
  });
});

describe('progress', () => {
  it('without a TTY prints a line every ~10% with rate and ETA', () => {
    const log = collect();
    let t = 0;
    const p = createProgress(20, { stream: log.stream, tty: false, now: () => t, label: 'images' });
    for (let i = 0; i < 20; i++) {
      t += 2000;
      p.tick(i === 4);
    }
    p.stop();
    const lines = log.text().trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('images 2/20 (10%) | 2.00 s/img | ETA 36s');
    expect(lines[4]).toBe('images 10/20 (50%) | 2.00 s/img | ETA 20s | 1 failed');
    expect(lines[9]).toBe('images 20/20 (100%) | 2.00 s/img | took 40s | 1 failed');
  });

  it('prints every item when there are fewer than 10, and where it stopped when cut short', () => {
    const log = collect();
    let t = 0;
    const p = createProgress(4, { stream: log.stream, tty: false, now: () => t, unit: 'pair' });
    t += 250;
    p.tick();
    p.log('a warning');
    t += 250;
    p.tick();
    p.stop();
    p.stop();
    expect(log.text()).toBe('images 1/4 (25%) | 4.00 pair/s | ETA 1s\na warning\nimages 2/4 (50%) | 4.00 pair/s | ETA 1s\nimages 2/4 (50%) | 4.00 pair/s | ETA 1s\n');
  });

  it('on a TTY draws a cli-progress bar with rate and ETA, log lines above it', () => {
    const log = collect();
    log.stream.isTTY = true;
    let t = 0;
    const p = createProgress(3, { stream: log.stream, now: () => t });
    t += 500;
    p.tick();
    p.log('phaselens: x: bad image');
    t += 500;
    p.tick(true);
    p.stop();
    const text = log.text();
    expect(text).toContain('phaselens: x: bad image');
    expect(text).toMatch(/images \[=+-*\] 2\/3 66% \| 2\.00 img\/s \| ETA 1s \| 1 failed/);
  });

  it('formats durations and rates', () => {
    expect(formatDuration(0.4)).toBe('0s');
    expect(formatDuration(59.6)).toBe('1m 00s');
    expect(formatDuration(691)).toBe('11m 31s');
    expect(formatDuration(7500)).toBe('2h 05m');
    expect(formatRate(0, 'img')).toBe('? s/img');
    expect(formatRate(3.4, 'img')).toBe('3.40 img/s');
    expect(formatRate(0.5, 'img')).toBe('2.00 s/img');
  });
});

describe('several processes on one output folder', () => {
  it('each item is done once; an item this process holds elsewhere is waited for, not counted', async () => {
    const out = freshDir('shared');
    const ids = Array.from({ length: 8 }, (_, i) => ({ id: `it${i}` }));
    const calls: string[] = [];
    const work = async (it: { id: string }) => {
      calls.push(it.id);
      await new Promise((r) => setTimeout(r, 5));
      return { id: it.id };
    };
    // two runs over the same folder at once, in one process: the locks serialise them
    const [a, b] = await Promise.all([runItems(ids, out, work, quiet), runItems(ids, out, work, quiet)]);
    expect(calls.sort()).toEqual(ids.map((x) => x.id).sort());
    expect(a.done + b.done).toBe(8);
    expect(a.done + a.skipped).toBe(8);
    expect(b.done + b.skipped).toBe(8);
    expect([a.missing, b.missing]).toEqual([[], []]);
    expect(listImages(out)).toEqual(ids.map((x) => `${x.id}.json`).sort());
  });

  it('an item held by a live process to the end is not done: logged, shown in the progress line, named in `missing`', async () => {
    const { tryLock, self } = await import('../../src/pipeline/locks.ts');
    const out = freshDir('held');
    mkdirSync(join(out, 'images'), { recursive: true });
    expect(tryLock(join(out, 'images', 'b.lock')).taken).toBe(true); // this process, in another role
    const log = collect();
    const s = await runItems(items('a', 'b', 'c'), out, async (it) => ({ id: it.id }), { progress: { stream: log.stream, tty: false }, lockWaitMs: 300 });
    expect(s).toMatchObject({ done: 2, skipped: 0, failed: 0, stopped: false, missing: [{ id: 'b', why: `held by pid ${self().pid}` }] });
    expect(log.text()).toContain(`b: held by pid ${self().pid}`);
    expect(log.text()).toMatch(new RegExp(`images 2/3 \\(66%\\).* \\| 1 held by pid ${self().pid}\\n$`));
    expect(listImages(out)).toEqual(['a.json', 'b.lock', 'c.json']);
  });

  it('a held item whose holder finishes it, or dies, during the wait is counted or taken over', async () => {
    const { spawn } = await import('node:child_process');
    const locks = resolve(import.meta.dirname, '../../src/pipeline/locks.ts');
    const out = freshDir('takeover');
    mkdirSync(join(out, 'images'), { recursive: true });
    // b: a live process takes the lock and dies 1.5 s later without a result; c: another writes c's result, then unlocks
    const holder = (id: string, finish: boolean) => {
      const code = `const { tryLock, unlock } = await import(${JSON.stringify(locks)}); const fs = await import('node:fs');
        const lock = ${JSON.stringify(join(out, 'images', `${id}.lock`))};
        if (!tryLock(lock).taken) process.exit(3);
        console.log('locked');
        setTimeout(() => { ${finish ? `fs.writeFileSync(${JSON.stringify(resultPath(out, id))}, '{"by":"other"}'); unlock(lock);` : ''} process.exit(0); }, 1500);`;
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      return new Promise<void>((ok) => p.stdout.once('data', () => ok()));
    };
    await Promise.all([holder('b', false), holder('c', true)]);
    const calls: string[] = [];
    const log = collect();
    const s = await runItems(items('a', 'b', 'c'), out, async (it) => (calls.push(it.id), { id: it.id }), { progress: { stream: log.stream, tty: false }, lockWaitMs: 20_000 });
    expect(calls).toEqual(['a', 'b']);
    expect(log.text()).toMatch(/b: held by pid \d+ .*\nphaselens: c: held by pid \d+ /);
    expect(log.text()).toContain('waiting up to 20 s for 2 item(s) held by other processes');
    expect(log.text().trim().split('\n').at(-1)).toMatch(/^images 3\/3 \(100%\) \| [^|]+ \| took \d+s$/); // none held at the end
    expect(s).toMatchObject({ done: 2, skipped: 1, missing: [] });
    expect(readResult(out, 'c')).toEqual({ by: 'other' });
    expect(listImages(out)).toEqual(['a.json', 'b.json', 'c.json']);
  });
});
