/**
 * Processes as a killed job leaves them, for the lock and preemption tests: a parent that
 * never reaps (a container whose pid 1 does not, `docker run` without --init), so a killed
 * child stays a zombie, and /proc look-ups of state and children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Starts `argv` under a python3 parent that never reaps: it makes itself the child
 * subreaper (so orphaned grandchildren come to it, not to pid 1), forks and execs `argv`
 * (stdout to /dev/null, stderr inherited), prints the child's pid, then its exit status as seen by waitid(WNOWAIT) — which leaves
 * it a zombie — and sleeps. Kill `parent` to let pid 1 reap them all.
 */
export function startUnreaped(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { parent: ChildProcess; pid: Promise<number>; exit: Promise<{ code: number | null; signal: number | null }> } {
  const py = `
import ctypes, os, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # this process's stdout is for the two lines below
    os.execv(sys.argv[1], sys.argv[1:])
print(pid, flush=True)
r = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
print(("exit" if r.si_code == os.CLD_EXITED else "signal"), r.si_status, flush=True)
while True:
    time.sleep(3600)
`;
  const parent = spawn('python3', ['-c', py, ...argv], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let rest = '';
  parent.stdout!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  const line = (i: number) =>
    new Promise<string>((resolve, reject) => {
      const check = () => (lines.length > i ? resolve(lines[i]) : waiters.push(check));
      parent.once('exit', () => (lines.length > i ? resolve(lines[i]) : reject(new Error('the non-reaping parent exited'))));
      check();
    });
  const pid = line(0).then(Number);
  const exit = line(1).then((l) => {
    const [how, n] = l.split(' ');
    return how === 'exit' ? { code: Number(n), signal: null } : { code: null, signal: Number(n) };
  });
  exit.catch(() => {}); // a parent killed first never tells
  return { parent, pid, exit };
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
