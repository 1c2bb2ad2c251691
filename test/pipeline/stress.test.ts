/**
 * Kill and resume in a loop (issue 22): real `analyze` runs of a tiny LLaVA over a few
 * images, each started under a parent that never reaps (so killed processes stay zombies)
 * while another process keeps a CPU busy, are killed after random delays in one of these
 * ways: the `phaselens` wrapper (SIGKILL), its child, both, SIGTERM then SIGKILL, or two
 * processes sharing the folder killed at different moments. The next run starts at once.
 * Each folder gets 1–4 killed runs, then one (or two at once) left to finish, which must
 * exit 0 with every result; any run that exits 0 must leave every result on disk.
 * A loss is a run that exited 0 with a result missing or unreadable; a failure, a run left
 * to finish that did not exit 0, or a lock or temporary file left at the end. There must
 * be neither.
 *
 * CI mode: 20 runs. Long mode (PHASELENS_STRESS_LONG=1): 500 runs, for a closing figure.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectItems } from '../../src/pipeline/analyze.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { childrenOf, procState, startUnreaped } from '../helpers/procs.ts';

const LONG = process.env.PHASELENS_STRESS_LONG === '1';
const RUNS = LONG ? 500 : 20;
const SEED = Number(process.env.PHASELENS_STRESS_SEED ?? 22);
const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const COCO = join(import.meta.dirname, '../fixtures/coco_mini');
const DATA = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;
const N = 3;
const IDS = selectItems({ data: DATA, limit: N, seed: 0 }).items.map((i) => i.id);
const work = mkdtempSync(join(tmpdir(), 'phaselens-stress-'));
const model = join(work, 'tiny');
// a holder that is dying is taken over within this; a finishing run never waits on a live one that long
const ENV = { ...process.env, PHASELENS_LOCK_WAIT: '60' };

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 6 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const rand = mulberry32(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Items of `out` without a parseable result (a missing or damaged file). */
function lacking(out: string): string[] {
  return IDS.filter((id) => {
    try {
      const v = JSON.parse(readFileSync(join(out, 'images', `${id}.json`), 'utf8'));
      return typeof v !== 'object' || v === null;
    } catch {
      return true;
    }
  });
}

const holdsLock = (out: string) => existsSync(join(out, 'images')) && readdirSync(join(out, 'images')).some((f) => f.endsWith('.lock'));

interface Stats {
  runs: number;
  finished0: number;
  exits: Record<string, number>;
  kills: Record<string, number>;
  losses: string[];
  failures: string[];
}

/** One `analyze` run under a non-reaping parent; every exit 0 is checked against the disk as it is reported. */
function launch(out: string, stats: Stats) {
  const r = startUnreaped([process.execPath, CLI, 'analyze', '--model', model, '--data', DATA, '--limit', String(N), '--chat', '--out', out], ENV);
  stats.runs++;
  const exit = r.exit.then((e) => {
    const key = e.code !== null ? `exit ${e.code}` : `signal ${e.signal}`;
    stats.exits[key] = (stats.exits[key] ?? 0) + 1;
    if (e.code === 0) {
      stats.finished0++;
      const gone = lacking(out);
      if (gone.length) stats.losses.push(`${out}: exit 0 without ${gone.join(', ')}`);
    }
    return e;
  });
  return { ...r, exit };
}

type Run = ReturnType<typeof launch>;

/** Waits a random time: from the start (often inside start-up), or from the first lock (inside an item). */
async function randomMoment(out: string, run: Run): Promise<void> {
  if (rand() < 0.3) return sleep(rand() * 3000);
  const extra = rand() * 1500;
  const end = Date.now() + 20_000;
  let ended = false;
  void run.exit.then(() => (ended = true), () => (ended = true));
  while (!holdsLock(out) && !ended && Date.now() < end) await sleep(10);
  await sleep(extra);
}

async function kill(run: Run, how: string, stats: Stats): Promise<void> {
  stats.kills[how] = (stats.kills[how] ?? 0) + 1;
  const wrapper = await run.pid;
  const [child] = childrenOf(wrapper);
  const signal = (pid: number | undefined, s: NodeJS.Signals) => {
    if (!pid || procState(pid) === null || procState(pid) === 'Z') return;
    try {
      process.kill(pid, s);
    } catch {
      // gone meanwhile
    }
  };
  if (how === 'wrapper') signal(wrapper, 'SIGKILL');
  else if (how === 'child') signal(child ?? wrapper, 'SIGKILL'); // no child yet: the wrapper
  else if (how === 'both') {
    signal(wrapper, 'SIGKILL');
    signal(child, 'SIGKILL');
  } else {
    signal(wrapper, 'SIGTERM');
    await sleep(rand() * 1500);
    signal(wrapper, 'SIGKILL');
    signal(child, 'SIGKILL');
  }
}

describe('kill and resume in a loop', () => {
  it(
    `${RUNS} runs under CPU load: no run exits 0 with a result missing, every folder ends complete`,
    async () => {
      const burner = spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' });
      const parents: Run['parent'][] = [];
      const stats: Stats = { runs: 0, finished0: 0, exits: {}, kills: {}, losses: [], failures: [] };
      const started = Date.now();
      let folders = 0;
      try {
        while (stats.runs < RUNS) {
          const out = join(work, `out-${folders++}`);
          const killed = 1 + Math.floor(rand() * 4);
          for (let k = 0; k < killed && stats.runs < RUNS; k++) {
            const how = pick(['wrapper', 'child', 'both', 'term-kill', 'two'] as const);
            if (how === 'two') {
              stats.kills.two = (stats.kills.two ?? 0) + 1;
              const a = launch(out, stats);
              await sleep(rand() * 1000);
              const b = launch(out, stats);
              parents.push(a.parent, b.parent);
              await randomMoment(out, a);
              await kill(a, pick(['wrapper', 'child', 'both']), stats);
              await sleep(rand() * 1500);
              await kill(b, pick(['wrapper', 'child', 'both', 'term-kill']), stats);
            } else {
              const a = launch(out, stats);
              parents.push(a.parent);
              await randomMoment(out, a);
              await kill(a, how, stats);
            }
            // the dead stay unreaped for one more round, then their parents go
            while (parents.length > 4) parents.shift()!.kill('SIGKILL');
          }
          // left to finish: one run, or two at once on the folder
          const finishing = rand() < 0.25 ? [launch(out, stats), launch(out, stats)] : [launch(out, stats)];
          parents.push(...finishing.map((f) => f.parent));
          const ends = await Promise.all(finishing.map((f) => f.exit));
          for (const e of ends) if (e.code !== 0) stats.failures.push(`${out}: a run left to finish ended with ${JSON.stringify(e)}`);
          if (LONG && folders % 10 === 0) console.log(`stress: ${stats.runs} runs, ${folders} folders, ${stats.losses.length} losses, ${stats.failures.length} failures, ${Math.round((Date.now() - started) / 1000)} s`);
        }
        // nothing of ours alive any more: no lock and no temporary file may remain in a folder that a run finished last
        for (const p of parents.splice(0)) p.kill('SIGKILL');
        const last = join(work, `out-${folders - 1}`);
        const left = readdirSync(last, { recursive: true }).map(String).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'));
        if (left.length) stats.failures.push(`${last}: left ${left.join(', ')}`);
      } finally {
        burner.kill('SIGKILL');
        for (const p of parents) p.kill('SIGKILL');
      }
      const figure = { seed: SEED, runs: stats.runs, folders, finished_exit0: stats.finished0, exits: stats.exits, kills: stats.kills, losses: stats.losses.length, failures: stats.failures.length, wall_s: Math.round((Date.now() - started) / 1000) };
      console.log(`stress: ${JSON.stringify(figure)}`);
      expect(stats.losses).toEqual([]);
      expect(stats.failures).toEqual([]);
      expect(stats.runs).toBeGreaterThanOrEqual(RUNS);
    },
    LONG ? 4 * 3600_000 : 600_000,
  );
});
