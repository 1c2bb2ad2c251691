/**
 * The input fuzzer (README, "Input checks"): mutated checkpoints, chat templates, data
 * set annotations and images (targets.ts), each case either accepted or refused with a
 * UserError. Any other exception is a crash; a case that runs past --hang-s seconds is a
 * hang. `--cases N` runs cases 0..N−1 of every target (the default, 250000 × 4 targets, is
 * the long mode: 10⁶ cases); case i of a target is reproduced from (--seed, target, i):
 *
 *   node src/cli/run-ts.mjs test/fuzz/fuzz.ts [--cases 250000] [--seed 1] [--only images,…] [--json FILE]
 *   node src/cli/run-ts.mjs test/fuzz/fuzz.ts --only checkpoint --from 1312 --cases 1313 --save DIR   # one case's input files
 *
 * The cases run in a worker thread that counts them in shared memory; the main thread
 * watches the count and, when a case stalls, stops the worker, records the hang and goes
 * on from the next case.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { UserError } from '../../src/errors.ts';
import { Rng } from './mutate.ts';
import { makeTargets } from './targets.ts';

/** Slots of the shared counters. */
const CASE = 0;
const ACCEPTED = 1;
const REFUSED = 2;

interface Job {
  target: string;
  seed: number;
  from: number;
  to: number;
  save?: string;
  counters: Int32Array;
}

export interface Finding {
  target: string;
  caseIndex: number;
  kind: 'crash' | 'hang';
  message: string;
}

export interface TargetSummary {
  cases: number;
  accepted: number;
  refused: number;
  findings: Finding[];
  seconds: number;
}

/** Case i of a target draws from its own generator, so any case is reproduced alone. */
const caseSeed = (seed: number, target: string, i: number) => {
  let h = seed * 0x9e3779b1 + i;
  for (const c of target) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
};

async function runCases(job: Job): Promise<void> {
  const target = (await makeTargets())[job.target];
  const c = job.counters;
  for (let i = job.from; i < job.to; i++) {
    Atomics.store(c, CASE, i);
    const dir = job.save && join(job.save, `${job.target}-${i}`);
    if (dir) mkdirSync(dir, { recursive: true });
    try {
      const ok = await target(new Rng(caseSeed(job.seed, job.target, i)), dir ? (name, bytes) => writeFileSync(join(dir, name), bytes) : undefined);
      Atomics.add(c, ok ? ACCEPTED : REFUSED, 1);
    } catch (e) {
      if (e instanceof UserError) Atomics.add(c, REFUSED, 1);
      else parentPort!.postMessage({ target: job.target, caseIndex: i, kind: 'crash', message: e instanceof Error ? (e.stack ?? e.message).split('\n').slice(0, 4).join(' | ') : String(e) } satisfies Finding);
    }
  }
  Atomics.store(c, CASE, job.to);
}

if (!isMainThread) {
  await runCases(workerData as Job);
  parentPort!.postMessage('done');
}

/** Runs cases [from, to) of one target in workers, restarting after a hang. */
async function fuzzTarget(target: string, o: FuzzOptions, onProgress: (done: number) => void): Promise<TargetSummary> {
  const sum: TargetSummary = { cases: o.to - o.from, accepted: 0, refused: 0, findings: [], seconds: 0 };
  const t0 = performance.now();
  for (let from = o.from; from < o.to; ) {
    const counters = new Int32Array(new SharedArrayBuffer(12));
    counters[CASE] = from;
    const w = new Worker(new URL('./worker.mjs', import.meta.url), { workerData: { target, seed: o.seed, from, to: o.to, save: o.save, counters } satisfies Job });
    w.on('message', (m: Finding | 'done') => m !== 'done' && sum.findings.push(m));
    const hung = await new Promise<number | null>((resolve, reject) => {
      let last = -1;
      let since = performance.now();
      const timer = setInterval(() => {
        const now = Atomics.load(counters, CASE);
        onProgress(now);
        if (now !== last) [last, since] = [now, performance.now()];
        else if (performance.now() - since > o.hangSeconds * 1000) {
          clearInterval(timer);
          void w.terminate().then(() => resolve(now));
        }
      }, 250);
      w.on('message', (m) => {
        if (m !== 'done') return;
        clearInterval(timer);
        resolve(null);
      });
      w.once('error', (e) => {
        clearInterval(timer);
        reject(e);
      });
    });
    sum.accepted += counters[ACCEPTED];
    sum.refused += counters[REFUSED];
    if (hung === null) break;
    sum.findings.push({ target, caseIndex: hung, kind: 'hang', message: `no progress for ${o.hangSeconds} s` });
    from = hung + 1;
  }
  sum.seconds = (performance.now() - t0) / 1000;
  return sum;
}

export interface FuzzOptions {
  from: number;
  to: number;
  seed: number;
  only?: string[];
  hangSeconds: number;
  save?: string;
  log?: (s: string) => void;
}

export async function fuzz(o: FuzzOptions): Promise<Record<string, TargetSummary>> {
  const all = Object.keys(await makeTargets());
  const unknown = o.only?.filter((t) => !all.includes(t)) ?? [];
  if (unknown.length) throw new Error(`no fuzz target ${unknown.join(', ')}; the targets are ${all.join(', ')}`);
  const out: Record<string, TargetSummary> = {};
  for (const t of all.filter((t) => !o.only || o.only.includes(t))) {
    let shown = o.from;
    out[t] = await fuzzTarget(t, o, (done) => {
      if (o.log && done - shown >= (o.to - o.from) / 10) o.log(`${t}: ${(shown = done)} / ${o.to}`);
    });
    const s = out[t];
    o.log?.(`${t}: ${s.cases} cases in ${s.seconds.toFixed(1)} s — ${s.accepted} accepted, ${s.refused} refused with a clear error, ${s.findings.length} findings`);
  }
  return out;
}

if (isMainThread && process.argv[1]?.endsWith('fuzz.ts')) {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '250000' },
      from: { type: 'string', default: '0' },
      seed: { type: 'string', default: '1' },
      only: { type: 'string' },
      json: { type: 'string' },
      save: { type: 'string' },
      'hang-s': { type: 'string', default: '20' },
    },
  });
  const r = await fuzz({ from: Number(values.from), to: Number(values.cases), seed: Number(values.seed), only: values.only?.split(','), hangSeconds: Number(values['hang-s']), save: values.save, log: (s) => console.error(s) });
  const findings = Object.values(r).flatMap((s) => s.findings);
  for (const f of findings.slice(0, 50)) console.log(`${f.kind} in ${f.target}, case ${f.caseIndex}: ${f.message}`);
  const total = Object.values(r).reduce((a, s) => a + s.cases, 0);
  console.log(`${total} cases, ${findings.length} findings (${findings.filter((f) => f.kind === 'crash').length} crashes, ${findings.filter((f) => f.kind === 'hang').length} hangs)`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ seed: Number(values.seed), targets: r }, null, 2));
  process.exit(findings.length ? 1 : 0);
}
