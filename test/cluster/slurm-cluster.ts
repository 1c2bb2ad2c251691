/**
 * A real single-node Slurm for tests: Debian's munged, slurmctld and slurmd, configured
 * in a temporary folder on 127.0.0.1 with private ports, sockets and state, so it
 * touches nothing of the machine's own configuration. Jobs run as the current user
 * (root in CI). The daemons are stopped and the folder removed by `stop()`.
 *
 * What it takes to run in a container without systemd or cgroup delegation:
 * munged with its own key, socket and pid file (`--force`: no checks on /var ownership);
 * proctrack/linuxproc and task/none (no cgroups); no accounting; the node's CPUs and
 * memory as the container reports them, so slurmd registers instead of draining itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

export interface SlurmCluster {
  dir: string;
  /** The environment a client command (sbatch, squeue, scontrol) needs to reach this cluster. */
  env: NodeJS.ProcessEnv;
  /** Runs a Slurm client command; throws with its output when it fails. */
  run(cmd: string, args: string[]): string;
  stop(): void;
}

const BINARIES = ['/usr/sbin/munged', '/usr/sbin/mungekey', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch'];

/** The binaries the cluster needs that are missing (empty when it can start). */
export function missingSlurm(): string[] {
  return BINARIES.filter((b) => !existsSync(b));
}

function waitFor(what: string, ok: () => boolean, ms: number, log: () => string): void {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`test Slurm: ${what} did not come up in ${ms / 1000} s\n${log()}`);
    spawnSync('sleep', ['0.2']);
  }
}

export function startSlurm(): SlurmCluster {
  const dir = mkdtempSync(join(tmpdir(), 'phaselens-slurm-'));
  const node = hostname().split('.')[0];
  const p = (f: string) => join(dir, f);
  mkdirSync(p('state'));
  mkdirSync(p('spool'));
  const socket = p('munge.socket');
  execFileSync('/usr/sbin/mungekey', ['-c', '-k', p('munge.key')]);
  chmodSync(p('munge.key'), 0o600);
  execFileSync('/usr/sbin/munged', ['--key-file', p('munge.key'), '--socket', socket, '--pid-file', p('munged.pid'), '--seed-file', p('munge.seed'), '--log-file', p('munged.log'), '--force']);
  const memory = Math.max(1024, Math.floor(totalmem() / 2 ** 20) - 2048);
  const conf = [
    'ClusterName=phaselens-test',
    `SlurmctldHost=${node}(127.0.0.1)`,
    'SlurmctldPort=16817',
    'SlurmdPort=16818',
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${socket}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    `StateSaveLocation=${p('state')}`,
    `SlurmdSpoolDir=${p('spool')}`,
    `SlurmctldPidFile=${p('slurmctld.pid')}`,
    `SlurmdPidFile=${p('slurmd.pid')}`,
    `SlurmctldLogFile=${p('slurmctld.log')}`,
    `SlurmdLogFile=${p('slurmd.log')}`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'JobAcctGatherType=jobacct_gather/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_CPU',
    'ReturnToService=2',
    'MpiDefault=none',
    // a killed or requeued task gets SIGTERM, then SIGKILL this many seconds later
    'KillWait=30',
    'MinJobAge=600',
    `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus().length} RealMemory=${memory} State=UNKNOWN`,
    `PartitionName=main Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
  ];
  writeFileSync(p('slurm.conf'), conf.join('\n') + '\n');
  const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: p('slurm.conf') };
  for (const k of Object.keys(env)) if (k.startsWith('SLURM_') && k !== 'SLURM_CONF') delete env[k];
  const log = () => ['slurmctld.log', 'slurmd.log', 'munged.log'].map((f) => (existsSync(p(f)) ? `--- ${f}\n${readFileSync(p(f), 'utf8').slice(-3000)}` : `--- ${f}: none`)).join('\n');
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}\n${log()}`);
    return r.stdout;
  };
  const stop = () => {
    for (const f of ['slurmd.pid', 'slurmctld.pid', 'munged.pid']) {
      try {
        process.kill(Number(readFileSync(p(f), 'utf8').trim()), 'SIGTERM');
      } catch {}
    }
    spawnSync('sleep', ['1']);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    execFileSync('/usr/sbin/slurmctld', [], { env });
    execFileSync('/usr/sbin/slurmd', [], { env });
    waitFor('the node', () => /\bidle\b/.test(spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { env, encoding: 'utf8' }).stdout ?? ''), 60_000, log);
  } catch (e) {
    stop();
    throw e;
  }
  return { dir, env, run, stop };
}
