#!/usr/bin/env node
// The `phaselens` executable: loads the TypeScript CLI through tsx (no build step).
//
// Dawn prints two lines from C++ to the process's stderr when it enumerates a Vulkan
// adapter that reports huge dynamic-buffer limits (lavapipe, RADV):
//   Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially reduced ...
// They come before any device limit can be requested and no API silences them, so the CLI
// runs in a child process whose stderr this one filters (`--verbose` or PHASELENS_VERBOSE=1
// keeps them). The child writes its own messages straight to the terminal when stderr is
// one (fd 3), so progress bars keep working; signals are passed on (the child tolerates
// getting them twice, as under Slurm, which signals every process of a job), and the
// child ends itself if this process is killed outright (the IPC channel closes). Locks and
// temporary files name the child, the process that writes (src/pipeline/locks.ts).
import { spawn } from 'node:child_process';
import { isatty, WriteStream } from 'node:tty';
import { fileURLToPath } from 'node:url';

const WRAPPED = 'PHASELENS_WRAPPED';
const DAWN_NOISE = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

const verbose = process.argv.includes('--verbose') || process.env.PHASELENS_VERBOSE === '1';

if (process.env[WRAPPED] || verbose) {
  if (process.env[WRAPPED] === '3') {
    const tty = new WriteStream(3);
    Object.defineProperty(process, 'stderr', { value: tty, configurable: true, writable: true });
  }
  delete process.env[WRAPPED];
  if (process.channel) {
    process.channel.unref();
    process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
} else {
  const tty = isatty(2);
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'pipe', tty ? 2 : 'ignore', 'ipc'],
    env: { ...process.env, [WRAPPED]: tty ? '3' : '1' },
  });
  for (const s of FORWARDED) process.on(s, () => child.kill(s));
  let rest = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    const kept = lines.filter((l) => !DAWN_NOISE.test(l));
    if (kept.length) process.stderr.write(kept.join('\n') + '\n');
  });
  const ended = new Promise((resolve) => child.stderr.on('end', resolve));
  child.on('exit', async (code, signal) => {
    await ended;
    if (rest) process.stderr.write(rest);
    if (signal) {
      for (const s of FORWARDED) process.removeAllListeners(s);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}
