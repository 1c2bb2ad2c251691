/**
 * Who owns a file of an output folder, and whether that process still lives: the per-item
 * locks (`OUT/images/<id>.lock`) that let several processes share one folder, and the
 * temporary files that results are written through.
 *
 * Liveness, decided from /proc rather than from `kill -0`: a process is named by its pid
 * *and* its start time (field 22 of /proc/<pid>/stat, clock ticks since boot), and it is
 * alive only when /proc/<pid>/stat exists, shows the same start time (a reused pid has
 * another) and its state is not Z or X. `kill -0` succeeds on a zombie, and a SIGKILLed
 * process stays one until its parent reaps it — for ever under a pid 1 that does not reap
 * (a container without --init) —, so a killed run's lock would read as live (issue 22).
 * A kernel-released lock (flock) would avoid the question, but Node has no flock, and
 * over NFS it is as unreliable as pids; the start time needs nothing but /proc.
 *
 * What is named is the process that writes (`process.pid`), not the `phaselens` wrapper
 * around it: the wrapper's death says nothing about whether its child is still writing.
 * Processes are compared only where their pids mean something: the same host name, boot
 * (`/proc/sys/kernel/random/boot_id`; another boot: dead) and pid namespace. A lock from
 * another host or pid namespace (a folder shared over NFS, containers) cannot be judged:
 * it is stale only when older than STALE_MS.
 *
 * A lock is written whole before it exists: the record goes to a temporary file, which
 * link() puts under the lock's name — EEXIST when it is taken, like O_EXCL —, so nobody
 * ever reads an empty or half-written lock from this code; a foreign one that does not
 * parse is respected for GRACE_MS after its last change. A stale lock is moved aside by
 * rename() (one process wins) and checked to be the record that was judged before it is
 * deleted; a fresh one moved aside by a racing taker is put back.
 *
 * Locks only spare duplicate work: the truth is on disk. A run counts an item as done
 * only when its result file is there (runner.ts), so a misjudged lock costs time, never
 * a result.
 */
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** A lock from a process whose liveness cannot be checked here is stale after this long. */
const STALE_MS = 24 * 3600 * 1000;
/** An unparseable lock (not written by this code) is respected this long after its last change. */
const GRACE_MS = 60 * 1000;

/** /proc/<pid>/stat: state (field 3) and start time (field 22); the name (field 2) may hold spaces and parentheses. */
function procStat(pid: number): { state: string; start: string } | null {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], start: f[19] };
}

function readOr(read: () => string, otherwise: string): string {
  try {
    return read().trim();
  } catch {
    return otherwise;
  }
}

/** Where pids mean the same thing: host, boot and pid namespace. */
interface Place {
  host: string;
  boot: string;
  pidns: string;
}

/** A process: its pid, its start time (null where there is no /proc) and where it runs. */
export interface Holder extends Place {
  pid: number;
  start: string | null;
}

const HERE: Place = {
  host: hostname(),
  boot: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'latin1'), ''),
  pidns: readOr(() => readlinkSync('/proc/self/ns/pid'), ''),
};
const SELF: Holder = { ...HERE, pid: process.pid, start: procStat(process.pid)?.start ?? null };
/** Temporary file names carry the place as a short hash (host names may hold dots). */
const placeTag = (p: Place) => createHash('sha256').update(`${p.host}\0${p.boot}\0${p.pidns}`).digest('hex').slice(0, 8);
const HERE_TAG = placeTag(HERE);

/** This process. */
export function self(): Holder {
  return SELF;
}

/** Whether the process `pid` that started at `start` still runs on this host (without /proc: `kill -0`). */
export function aliveHere(pid: number, start: string | null): boolean {
  if (SELF.start === null) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  const st = procStat(pid);
  return st !== null && st.start === start && st.state !== 'Z' && st.state !== 'X';
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return Infinity;
  }
}

/** How a lock's holder is named in messages: `pid 123`, `pid 123 on host gpu7`. */
export function holderName(h: Holder): string {
  if (h.host !== HERE.host) return `pid ${h.pid} on host ${h.host}`;
  if (h.pidns !== HERE.pidns) return `pid ${h.pid} in another pid namespace`;
  return `pid ${h.pid}`;
}

/** A lock's record: its holder and when it was taken (ms since the epoch). */
function parseLock(text: string): (Holder & { time: number }) | null {
  try {
    const h = JSON.parse(text) as Partial<Holder> & { time?: unknown };
    if (!Number.isInteger(h.pid) || typeof h.host !== 'string' || typeof h.boot !== 'string' || typeof h.pidns !== 'string' || typeof h.time !== 'number') return null;
    if (h.start !== null && typeof h.start !== 'string') return null;
    return h as Holder & { time: number };
  } catch {
    return null;
  }
}

/** Is the holder of a record (lock or temporary file) gone? `time`: when the record was written. */
function gone(h: Holder, time: number): boolean {
  if (h.host === HERE.host && h.boot !== HERE.boot) return true; // the host rebooted since
  if (h.host !== HERE.host || h.pidns !== HERE.pidns) return Date.now() - time > STALE_MS;
  return !aliveHere(h.pid, h.start);
}

/** `path`'s live holder, or null when there is no lock or it is stale; `text` is what was read. */
function judge(path: string): { text: string; holder: string | null } | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const h = parseLock(text);
  if (h === null) return { text, holder: ageMs(path) > GRACE_MS ? null : 'an unreadable lock written less than a minute ago' };
  return { text, holder: gone(h, h.time) ? null : holderName(h) };
}

/** Who holds the lock at `path`: a description of its live holder, or null (no lock, or a stale one). */
export function lockHolder(path: string): string | null {
  return judge(path)?.holder ?? null;
}

/** Deletes the lock at `path` if it is stale (a lock taken meanwhile by a live process stays). */
export function clearStale(path: string): void {
  const found = judge(path);
  if (found !== null && found.holder === null) removeStale(path, found.text);
}

let tempCounter = 0;

/**
 * A fresh temporary name next to `path`: `.<name>.<place>-<pid>-<start>.<n><hex>.tmp`.
 * The writer is named in full, so its liveness is judged as a lock's is.
 */
export function tempPath(path: string): string {
  const tag = `${HERE_TAG}-${SELF.pid}-${SELF.start ?? 0}`;
  return join(dirname(path), `.${basename(path)}.${tag}.${tempCounter++}${randomBytes(3).toString('hex')}.tmp`);
}

const TEMP = /^\..+\.([0-9a-f]{8})-(\d+)-(\d+)\.\d+[0-9a-f]{6}\.tmp$/;

/** True for a temporary file (of tempPath) whose writer is gone: `dir/name` may be deleted. */
export function isDeadTemp(dir: string, name: string): boolean {
  const m = TEMP.exec(name);
  if (!m) return false;
  if (m[1] !== HERE_TAG) return ageMs(join(dir, name)) > STALE_MS;
  return !aliveHere(Number(m[2]), m[3]);
}

/**
 * Takes the lock at `path`, taking over stale ones (a bounded number of times: each round
 * either takes it, finds a live holder, or saw another process take over first).
 * `{ taken: false, holder }` names the live holder.
 */
export function tryLock(path: string): { taken: true } | { taken: false; holder: string } {
  const record = JSON.stringify({ ...SELF, time: Date.now() });
  const tmp = tempPath(path);
  writeFileSync(tmp, record, { flag: 'wx' });
  try {
    for (let round = 0; round < 8; round++) {
      try {
        linkSync(tmp, path);
        return { taken: true };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const found = judge(path);
      if (found === null) continue; // released meanwhile
      if (found.holder !== null) return { taken: false, holder: found.holder };
      removeStale(path, found.text);
    }
    return { taken: false, holder: 'other processes taking it over' };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Deletes the stale lock at `path` if it still holds `seen`; a lock that replaced it meanwhile is put back. */
function removeStale(path: string, seen: string): void {
  const aside = tempPath(path);
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // another process moved it first
    throw e;
  }
  try {
    if (readFileSync(aside, 'utf8') !== seen) linkSync(aside, path);
  } catch (e) {
    // EEXIST: a third process locked it meanwhile; the one moved aside has lost its lock, and two may do the item (results are atomic)
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    rmSync(aside, { force: true });
  }
}

/** Releases a lock this process holds (a lock that is not its own is left alone). */
export function unlock(path: string): void {
  let h: Holder | null;
  try {
    h = parseLock(readFileSync(path, 'utf8'));
  } catch {
    return;
  }
  if (h && h.pid === SELF.pid && h.start === SELF.start && h.host === SELF.host && h.boot === SELF.boot && h.pidns === SELF.pidns) rmSync(path, { force: true });
}
