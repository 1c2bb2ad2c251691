/**
 * Processes as a killed job leaves them, for the lock and preemption tests: a parent that
 * never reaps (a container whose pid 1 does not, `docker run` without --init), so a killed
 * child stays a zombie, and /proc look-ups of state and children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Starts `argv` under a python3 parent that never reaps: it makes itself the child
 * subreaper (so orphaned grandchildren come to it, not to pid 1), forks and execs `argv`,
 * prints the child's pid and sleeps. Kill `parent` to let pid 1 reap them all.
 */
export function startUnreaped(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { parent: ChildProcess; pid: Promise<number> } {
  const py = `
import ctypes, os, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
print(pid, flush=True)
while True:
    time.sleep(3600)
`;
  const parent = spawn('python3', ['-c', py, ...argv], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const pid = new Promise<number>((resolve, reject) => {
    parent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    parent.once('exit', () => reject(new Error('the non-reaping parent exited')));
  });
  return { parent, pid };
}

/** A process's state letter (R, S, Z, ...) from /proc/<pid>/stat, or null when there is no such process. */
export function procState(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

/** The pids whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const s = readFileSync(`/proc/${n}/stat`, 'latin1');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) kids.push(Number(n));
    } catch {
      // exited meanwhile
    }
  }
  return kids;
}

/** Polls `cond` every 10 ms until it holds; throws after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `kill -0`: what the old liveness check asked, and what a zombie answers yes to. */
export function killZeroSucceeds(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
