/**
 * Per-item lock files, so several processes can share one output folder (shards of one
 * array job writing to one place, or a user re-running while a run is still going):
 * `OUT/images/<id>.lock` is created exclusively (O_EXCL) before an item is worked on and
 * removed after its result is written. An item another live process holds is left to it.
 * A lock is stale — and is taken over — when its process is gone (same host: `kill -0`
 * fails) or, for a lock from another host, when it is older than STALE_MS; SIGKILL
 * leaves only stale locks.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

const STALE_MS = 24 * 3600 * 1000;

/**
 * The process that owns this run's locks and temporary files: the one the user or the
 * scheduler started. The `phaselens` executable runs the command in a child (see
 * src/cli/phaselens.mjs) and names itself in PHASELENS_OWNER_PID; if it is killed outright
 * its child may still finish an item for a moment, so its locks must already read as
 * stale to a re-run. Only the direct child takes the variable (a grandchild that
 * inherited it has another parent).
 */
export function ownerPid(): number {
  const owner = Number(process.env.PHASELENS_OWNER_PID);
  return owner === process.ppid ? owner : process.pid;
}

interface LockInfo {
  pid: number;
  host: string;
  time: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when a process id written in a file name or lock (`pid`) on this host is gone. */
export function deadHere(pid: number): boolean {
  return pid !== process.pid && pid !== ownerPid() && !alive(pid);
}

export function isStale(path: string): boolean {
  let info: LockInfo;
  try {
    info = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    return true; // unreadable or half-written: its writer died mid-write
  }
  if (info.host === hostname()) return deadHere(info.pid);
  return Date.now() - info.time > STALE_MS;
}

/** Takes the lock at `path`, recovering a stale one; false when a live process holds it. */
export function tryLock(path: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, JSON.stringify({ pid: ownerPid(), host: hostname(), time: Date.now() }), { flag: 'wx' });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!isStale(path)) return false;
      rmSync(path, { force: true });
    }
  }
  return false;
}

export function unlock(path: string): void {
  rmSync(path, { force: true });
}
