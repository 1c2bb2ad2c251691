/**
 * `npm run bench` — every benchmark, each against a baseline measured in the same run:
 *
 *   matmul         ours vs OpenBLAS sgemm            (bench/kernels.ts, bench/native/sgemm.c)
 *   attention      ours vs the same math in torch    (bench/kernels.ts, bench/torch_attention.py)
 *   models         LLaVA, InstructBLIP and LLaVA-NeXT (tiles) load, prefill, decode and analyze
 *                  vs HF transformers, and analyze vs the plain forward  (bench/models.ts)
 *   interventions  knockout sweep (LLaVA, LLaVA-NeXT) vs the naive re-run and vs HF transformers
 *                  (bench/interventions.ts)
 *   chameleon      Chameleon VQ encode, prefill and the gate measures vs HF transformers, and
 *                  the gate's GPU memory at two depths (bench/chameleon.ts)
 *   shards         3 analyze shards + merge vs one process over the same items (bench/shards.ts)
 *   load           checkpoint streaming vs `cat`     (bench/load.ts, when present)
 *   host-overhead  dispatches/s of a small-kernel chain vs torch eager, and tiny LLaVA /
 *                  InstructBLIP decode tokens/s vs HF transformers eager (bench/host-overhead.ts)
 *
 * The HF side (models, interventions, chameleon) is one long-lived bench/hf_baseline.py per group in the
 * .ci/hf-venv.sh venv (bench/hf.ts): torch threads = cores, float32 weights on both sides, a
 * warm-up then the median of --reps on both sides, the same work (last-position logits, EOS
 * ignored, the same new tokens), start-up and loading reported apart. Every ratio against it
 * is "time-ratio-vs-hf" = phaselens time / transformers time (lower is better); the table's
 * "ratio is" column names every ratio that is not a rate ratio (ours / baseline of GFLOP/s or
 * MB/s, higher is better), and the lines under the table give each group's settings.
 *
 * Usage: node src/cli/run-ts.mjs bench/main.ts [--only matmul,attention] [--json FILE]
 *                                              [--reps N] [--quick]
 *   --only   comma-separated groups (matmul, attention, models, interventions, chameleon, shards, load, host-overhead) or case
 *            names; models and interventions then run only the families whose cases are named
 *   --json   also write the records as a JSON array (see bench/record.ts)
 *   --reps   timed samples per side (default 5 for matmul, attention and host-overhead, 3 for models, interventions and chameleon)
 *   --quick  tiny shapes in every group: checks that the suite runs (test/bench/quick.test.ts),
 *            measures nothing useful; chameleon only when --only names it (its tiny run
 *            takes ~30 s on 2 busy cores, over the quick test's budget)
 *   --matmul-kernel V      time only matmul variant V (default: every variant, see bench/kernels.ts)
 *   --attention-variant V  likewise for attention
 * Exits 1 when a result fails validation or a benchmark cannot run.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createNodeGpu } from '../src/gpu/node.ts';
import { checkMatmulVariants } from '../src/ops/matmul-check.ts';
import type { Gpu } from '../src/gpu/context.ts';
import { MATMUL_KERNELS, type MatmulKernel } from '../src/ops/linear.ts';
import type { AttentionVariant } from '../src/ops/attention.ts';
import { ATTENTION_VARIANTS, benchAttention, benchMatmul, type KernelBenchOptions } from './kernels.ts';
import { benchChameleon, CHAMELEON_CASES } from './chameleon.ts';
import { benchInterventions, KNOCKOUT_CASES, KNOCKOUT_CHECKPOINTS } from './interventions.ts';
import { benchModels, MID_SHAPE, MODEL_CASES } from './models.ts';
import { benchHostOverhead, HOST_CASES, HOST_FAMILIES } from './host-overhead.ts';
import { formatRecords, recordsJson, type BenchRecord } from './record.ts';

type Group = (gpu: Gpu, opts: KernelBenchOptions) => Promise<BenchRecord[]>;

const LOAD = new URL('./load.ts', import.meta.url);
/** Timed samples per side of the groups against HF transformers, unless --reps says otherwise. */
const HF_REPS = 3;
/** What each group measured against, printed under the table. */
const settings: string[] = [];

const MODEL_FAMILIES = Object.keys(MID_SHAPE);
const modelCases = (f: string) => MODEL_CASES.map((c) => `${f}-${c}`);
const knockoutCases = (prefix: string) => KNOCKOUT_CASES.map((c) => `${prefix}${c}`);
/** With --only naming cases of GROUP: the families whose cases are named (all when the group is named). */
const familiesFor = (group: string, cases: (f: string) => string[], all: string[]) =>
  !wanted || wanted.includes(group) ? undefined : all.filter((f) => cases(f).some((c) => wanted.includes(c)));

const groups: Record<string, { cases: string[]; run: Group }> = {
  matmul: { cases: ['matmul'], run: benchMatmul },
  attention: { cases: ['attention'], run: benchAttention },
  models: {
    cases: MODEL_FAMILIES.flatMap(modelCases),
    run: async (gpu, opts) => {
      const families = familiesFor('models', modelCases, MODEL_FAMILIES);
      const { records, settings: line } = await benchModels(gpu, { reps: opts.reps ?? HF_REPS, quick: opts.quick ?? false, families, onRecord: opts.onRecord });
      settings.push(line);
      return records;
    },
  },
  interventions: {
    cases: KNOCKOUT_CHECKPOINTS.flatMap((c) => knockoutCases(c.prefix)),
    run: async (gpu, opts) => {
      const prefix = (f: string) => KNOCKOUT_CHECKPOINTS.find((c) => c.family === f)!.prefix;
      const families = familiesFor('interventions', (f) => knockoutCases(prefix(f)), KNOCKOUT_CHECKPOINTS.map((c) => c.family));
      const { records, settings: line } = await benchInterventions(gpu, { reps: opts.reps ?? HF_REPS, quick: opts.quick ?? false, families, onRecord: opts.onRecord });
      settings.push(line);
      return records;
    },
  },
  chameleon: {
    cases: CHAMELEON_CASES,
    run: async (gpu, opts) => {
      const { records, settings: line } = await benchChameleon(gpu, { reps: opts.reps ?? HF_REPS, quick: opts.quick ?? false, onRecord: opts.onRecord });
      settings.push(line);
      return records;
    },
  },
  shards: {
    cases: ['shards-merge-overhead', 'shards-extra-startups'],
    run: async (_gpu, opts) => {
      const { benchShards } = await import('./shards.ts');
      const records = await benchShards({ quick: opts.quick });
      records.forEach((r) => opts.onRecord?.(r));
      return records;
    },
  },
  load: {
    cases: ['safetensors-stream', 'load-rss'],
    run: async (gpu, opts) => {
      // bench/load.ts is another benchmark's file; it may not exist in every checkout
      const mod = (await import(LOAD.href)) as { benchLoad: (o: { device: GPUDevice; totalBytes?: number; maxTensorBytes?: number }) => Promise<BenchRecord[]> };
      const records = await mod.benchLoad({ device: gpu.device, ...(opts.quick ? { totalBytes: 64e6, maxTensorBytes: 16e6 } : {}) });
      records.forEach((r) => opts.onRecord?.(r));
      return records;
    },
  },
  'host-overhead': {
    cases: HOST_CASES,
    run: async (gpu, opts) => {
      const all = !wanted || wanted.includes('host-overhead');
      const { records, settings: line } = await benchHostOverhead(gpu, {
        reps: opts.reps ?? 5,
        quick: opts.quick ?? false,
        chain: all || wanted.includes('host-overhead-dispatch'),
        families: all ? undefined : HOST_FAMILIES.filter((f) => wanted.includes(`host-overhead-${f}-decode`)),
        onRecord: opts.onRecord,
      });
      settings.push(line);
      return records;
    },
  },
};

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const program = new Command('bench')
  .description('phaselens benchmarks, each against a baseline measured in the same run')
  .option('--only <list>', 'comma-separated groups (matmul, attention, models, interventions, chameleon, shards, load, host-overhead) or case names')
  .option('--json <file>', 'also write the records as JSON')
  .option('--reps <n>', 'timed samples per side (default: 5 for matmul, attention and host-overhead, 3 for models, interventions and chameleon)', positiveInt)
  .option('--quick', 'tiny shapes (smoke test of the suite)', false)
  .addOption(new Option('--matmul-kernel <variant>', 'time only this matmul variant').choices(MATMUL_KERNELS))
  .addOption(new Option('--attention-variant <variant>', 'time only this attention variant').choices(ATTENTION_VARIANTS))
  .parse(process.argv);
const opts = program.opts<{ only?: string; json?: string; reps?: number; quick: boolean; matmulKernel?: MatmulKernel; attentionVariant?: AttentionVariant }>();

const wanted = opts.only?.split(',').map((s) => s.trim()).filter(Boolean);
const available = Object.keys(groups).filter((g) => g !== 'load' || existsSync(LOAD));
if (wanted) {
  const known = new Set(Object.entries(groups).flatMap(([g, v]) => [g, ...v.cases]));
  const unknown = wanted.filter((w) => !known.has(w));
  if (unknown.length) {
    console.error(`bench: unknown --only entries: ${unknown.join(', ')} (groups: ${Object.keys(groups).join(', ')})`);
    process.exit(2);
  }
}
/** Groups --quick runs only when --only names them (bench/main.ts header). */
const QUICK_ON_REQUEST = new Set(['chameleon']);
const named = (g: string) => !!wanted && (wanted.includes(g) || groups[g].cases.some((c) => wanted.includes(c)));
const selected = available.filter((g) => (wanted ? named(g) : !(opts.quick && QUICK_ON_REQUEST.has(g))));
const keep = (r: BenchRecord) => !wanted || wanted.includes(r.case) || selected.some((g) => wanted.includes(g) && groups[g].cases.includes(r.case));

const gpu = await createNodeGpu();
// the same adapter with GPU-class kernels, for the GPU-class variants (src/gpu/adapter-class.ts)
const gpuClass = gpu.kernels === 'gpu' ? gpu : await createNodeGpu({ kernels: 'gpu' });
const matrices = (await checkMatmulVariants(gpuClass, (line) => console.error(line))).join('; ');
console.log(`adapter: ${gpu.adapterName} (${gpu.adapterClass.adapterClass} class)${matrices ? `; ${matrices}` : ''}; ${cpus().length} CPU threads (${cpus()[0]?.model ?? 'unknown CPU'}); load average ${loadavg()[0].toFixed(2)}`);
console.log(`groups: ${selected.join(', ') || '(none)'}${opts.quick ? ' (--quick: tiny shapes, not a measurement)' : ''}\n`);

const records: BenchRecord[] = [];
let failed = false;
for (const g of selected) {
  const t = performance.now();
  try {
    const rs = await groups[g].run(gpu, {
      reps: opts.reps,
      quick: opts.quick,
      matmulKernel: opts.matmulKernel,
      attentionVariant: opts.attentionVariant,
      gpuClass,
      onRecord: (r) => {
        if (!keep(r)) return;
        const f = (v: number) => (Number.isFinite(v) ? v.toPrecision(4) : '-');
        console.log(`  ${r.case} [${r.shape.join(', ')}] ${r.dtype}: ours ${f(r.ours)} ${r.unit}, baseline ${f(r.baseline)}, ratio ${f(r.ratio)}`);
      },
    });
    records.push(...rs.filter(keep));
    console.log(`${g}: ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  } catch (e) {
    failed = true;
    console.error(`${g}: FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}

console.log(formatRecords(records));
if (settings.length) console.log(`\n${settings.join('\n')}`);
console.log(`\nload average at the end: ${loadavg()[0].toFixed(2)} (other processes on the machine slow both sides, not always equally)`);
if (opts.json) {
  await writeFile(opts.json, recordsJson(records));
  console.log(`\nwrote ${records.length} records to ${opts.json}`);
}
if (gpuClass !== gpu) gpuClass.destroy();
gpu.destroy();
process.exit(failed ? 1 : 0);
