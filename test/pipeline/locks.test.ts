/**
 * Liveness that cannot be fooled (src/pipeline/locks.ts, issue 22): a lock or temporary
 * file names its writer by pid and start time; a zombie, a reused pid, a rebooted host
 * read as gone; a lock is never seen empty, and racing processes never hold one together.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isDeadTemp, lockHolder, self, tempPath, tryLock, unlock } from '../../src/pipeline/locks.ts';
import { killZeroSucceeds, procState, startUnreaped, until } from '../helpers/procs.ts';

const LOCKS = resolve(import.meta.dirname, '../../src/pipeline/locks.ts');
const dir = mkdtempSync(join(tmpdir(), 'phaselens-locks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (name = 'x') => join(dir, `${n++}-${name}.lock`);

/** Node code run with the project's TypeScript loader. */
const nodeArgs = (code: string) => [process.execPath, '--import', 'tsx', '--input-type=module', '-e', code];
const record = (over: Record<string, unknown>) => JSON.stringify({ ...self(), time: Date.now(), ...over });
/** /proc/<pid>/stat field 22. */
const startOf = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
};

describe('locks', () => {
  it('a lock (and a temporary file) naming a zombie is stale, though kill -0 still answers', async () => {
    const lock = fresh('zombie');
    const code = `const { tryLock, tempPath } = await import(${JSON.stringify(LOCKS)});
      if (!tryLock(${JSON.stringify(lock)}).taken) process.exit(3);
      (await import('node:fs')).writeFileSync(tempPath(${JSON.stringify(join(dir, 'z.json'))}), '{"half"');`;
    const { parent, pid } = startUnreaped(nodeArgs(code));
    try {
      const child = await pid;
      await until('the child to exit unreaped', () => procState(child) === 'Z');
      expect(killZeroSucceeds(child)).toBe(true); // what fooled the old check
      expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(child);
      expect(lockHolder(lock)).toBeNull();
      const tmp = (await import('node:fs')).readdirSync(dir).find((f) => f.startsWith('.z.json.'))!;
      expect(isDeadTemp(dir, tmp)).toBe(true);
      expect(tryLock(lock)).toEqual({ taken: true });
      expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a lock naming a live pid with another start time is stale; with its own, it is held', async () => {
    const sleeper = spawn('sleep', ['60']);
    try {
      await until('sleep to start', () => procState(sleeper.pid!) !== null);
      const start = startOf(sleeper.pid!);
      const live = fresh('live');
      writeFileSync(live, record({ pid: sleeper.pid, start }));
      expect(lockHolder(live)).toBe(`pid ${sleeper.pid}`);
      expect(tryLock(live)).toEqual({ taken: false, holder: `pid ${sleeper.pid}` });
      expect(JSON.parse(readFileSync(live, 'utf8')).pid).toBe(sleeper.pid); // left as it was
      const reused = fresh('reused');
      writeFileSync(reused, record({ pid: sleeper.pid, start: String(Number(start) + 1) }));
      expect(lockHolder(reused)).toBeNull();
      expect(tryLock(reused)).toEqual({ taken: true });
      // temporary names: this live process's is live; the same pid with another start time is gone
      const mine = basename(tempPath(join(dir, 'r.json')));
      expect(isDeadTemp(dir, mine)).toBe(false);
      const me = self();
      expect(isDeadTemp(dir, mine.replace(`-${me.pid}-${me.start}.`, `-${me.pid}-${Number(me.start) + 1}.`))).toBe(true);
      const foreign = '.r.json.12345678-1-1.0abcdef.tmp'; // another host's (tag): judged by age alone
      writeFileSync(join(dir, foreign), '');
      expect(isDeadTemp(dir, foreign)).toBe(false);
      const old = (Date.now() - 25 * 3600_000) / 1000;
      utimesSync(join(dir, foreign), old, old);
      expect(isDeadTemp(dir, foreign)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('a fresh, still-empty lock is not taken over; an old unreadable one is', () => {
    const lock = fresh('empty');
    writeFileSync(lock, '');
    const r = tryLock(lock);
    expect(r).toEqual({ taken: false, holder: 'an unreadable lock written less than a minute ago' });
    expect(readFileSync(lock, 'utf8')).toBe('');
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(lock, old, old);
    expect(tryLock(lock)).toEqual({ taken: true });
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
  });

  it('other hosts and pid namespaces are judged by age; another boot of this host is gone', () => {
    const cases: [Record<string, unknown>, string | null][] = [
      [{ host: 'elsewhere', pid: 1 }, 'pid 1 on host elsewhere'],
      [{ host: 'elsewhere', pid: 1, time: Date.now() - 25 * 3600_000 }, null],
      [{ pidns: 'pid:[1]', pid: 1 }, 'pid 1 in another pid namespace'],
      [{ boot: 'another-boot', pid: process.pid }, null],
    ];
    for (const [over, holder] of cases) {
      const lock = fresh('place');
      writeFileSync(lock, record(over));
      expect(lockHolder(lock), JSON.stringify(over)).toBe(holder);
    }
  });

  it('unlock removes only the caller\'s own lock', () => {
    const lock = fresh('theirs');
    writeFileSync(lock, record({ pid: 1, host: 'elsewhere' }));
    unlock(lock);
    expect(lockHolder(lock)).toBe('pid 1 on host elsewhere');
    const mine = fresh('mine');
    expect(tryLock(mine).taken).toBe(true);
    unlock(mine);
    expect(lockHolder(mine)).toBeNull();
  });

  it('racing processes: a lock is never read empty, never held by two, and a stale one is taken over once', async () => {
    const lock = fresh('race');
    writeFileSync(lock, record({ pid: 999_999_999, start: '1' })); // stale from the start
    // each process: lock, claim a marker exclusively (a second holder would find it), release; read the lock in between
    const code = `const { tryLock, unlock } = await import(${JSON.stringify(LOCKS)}); const fs = await import('node:fs');
      const lock = ${JSON.stringify(lock)}, marker = lock + '.holder';
      let taken = 0, overlaps = 0, empty = 0;
      for (let i = 0; i < 300; i++) {
        if (tryLock(lock).taken) {
          taken++;
          try { fs.writeFileSync(marker, '', { flag: 'wx' }); } catch { overlaps++; continue; }
          fs.rmSync(marker);
          unlock(lock);
        } else {
          try { if (fs.readFileSync(lock, 'utf8').length === 0) empty++; } catch {}
        }
      }
      console.log(JSON.stringify({ taken, overlaps, empty }));`;
    const runs = [0, 1, 2, 3].map(
      () =>
        new Promise<{ taken: number; overlaps: number; empty: number }>((ok, fail) => {
          const p = spawn(nodeArgs(code)[0], nodeArgs(code).slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          p.stdout.on('data', (d) => (out += d));
          p.on('exit', (c) => (c === 0 ? ok(JSON.parse(out)) : fail(new Error(`exit ${c}`))));
        }),
    );
    const r = await Promise.all(runs);
    expect(r.map((x) => x.overlaps)).toEqual([0, 0, 0, 0]);
    expect(r.map((x) => x.empty)).toEqual([0, 0, 0, 0]);
    expect(r.reduce((a, x) => a + x.taken, 0)).toBeGreaterThan(0);
    expect(lockHolder(lock)).toBeNull(); // all released
    // nothing left beside the lock folder's own files: no temporary files
    expect((await import('node:fs')).readdirSync(dirname(lock)).filter((f) => f.endsWith('.tmp') && f.includes('race'))).toEqual([]);
  });

  it('names the process that writes: a child names itself, whatever its parent is', () => {
    const lock = fresh('child');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const { tryLock } = await import(${JSON.stringify(LOCKS)}); tryLock(${JSON.stringify(lock)}); console.log(process.pid);`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(lock, 'utf8'));
    expect(rec.pid).toBe(Number(r.stdout.trim()));
    expect(rec.pid).not.toBe(process.pid);
    expect(typeof rec.start).toBe('string');
  });
});
