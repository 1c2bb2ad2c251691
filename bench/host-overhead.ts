/**
 * The host-overhead group: what each dispatch and each decoded token costs beyond the math,
 * against PyTorch / HF transformers eager on the CPU in the same run (bench/hf_baseline.py,
 * torch threads = cores). On lavapipe the "GPU" is this CPU too, so both sides share it.
 *   host-overhead-dispatch      dispatches/s of a chain of N elementwise adds on 256 floats,
 *                               each on the last one's output (allocated from the pool, the
 *                               input released), recorded, submitted and read back once;
 *                               baseline: torch.add ops/s of the same chain (eager). The note
 *                               gives the host's recording µs per dispatch apart.
 *   host-overhead-FAMILY-decode tokens/s of greedy KV-cached decode steps on the tiny
 *                               make-tiny checkpoint (seed 0, f32), EOS ignored, the same
 *                               tokens on both sides (checked); baseline: HF transformers
 *                               with eager attention. The note gives dispatches, copies,
 *                               compute passes and submissions per token and µs per dispatch.
 * Ratios: ours / baseline of rates (higher is better; ≥ 1 means as fast as torch eager).
 * Both sides: one warm-up, then the median of `reps`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { readImageFile } from '../src/io/load-node.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { elementwise } from '../src/ops/elementwise.ts';
import { generate } from '../src/models/generate.ts';
import { openModel } from '../src/models/registry.ts';
import type { Family } from '../src/models/vlm.ts';
import { makeTiny } from '../weights-tools/make-tiny.ts';
import { HfBaseline, hfSettings, median, type HfTimed } from './hf.ts';
import { record, type BenchRecord } from './record.ts';

const IMAGE = join(import.meta.dirname, '../test/fixtures/images/000000039769.png');
const QUESTION = 'Please describe everything you can see in this picture, including the animals, the objects and the colours.';
const CHAIN_SIZE = 256;
export const HOST_FAMILIES: Family[] = ['llava', 'instructblip'];
export const HOST_CASES = ['host-overhead-dispatch', ...HOST_FAMILIES.map((f) => `host-overhead-${f}-decode`)];

export interface HostBenchOptions {
  reps: number;
  quick: boolean;
  /** Default: every family of HOST_FAMILIES. */
  families?: Family[];
  /** Default true. */
  chain?: boolean;
  onRecord?: (r: BenchRecord) => void;
}

type Counts = Gpu['recorded'];
const since = (c0: Counts, gpu: Gpu) => Object.fromEntries(Object.entries(gpu.recorded).map(([k, v]) => [k, v - c0[k as keyof Counts]])) as Counts;

/** One chain: seconds from the first record to the read of the result, and seconds spent recording. */
async function chain(gpu: Gpu, a: Tensor, n: number): Promise<{ s: number; recordS: number }> {
  const t0 = performance.now();
  let x = a;
  for (let i = 0; i < n; i++) {
    const y = elementwise(gpu, 'add', x, a, 0, { name: 'chain.y' }); // a fixed name, as a model's tensors have
    if (x !== a) gpu.release(x);
    x = y;
  }
  const t1 = performance.now();
  const [v] = await gpu.readAll([x]);
  const s = (performance.now() - t0) / 1000;
  gpu.release(x);
  if (v[0] !== n + 1) throw new Error(`host-overhead chain: got ${v[0]}, expected ${n + 1}`);
  return { s, recordS: (t1 - t0) / 1000 };
}

async function benchChain(gpu: Gpu, hf: HfBaseline, o: HostBenchOptions): Promise<BenchRecord> {
  const n = o.quick ? 200 : 2000;
  const a = gpu.upload(new Float32Array(CHAIN_SIZE).fill(1), [CHAIN_SIZE], 'chain.a');
  await chain(gpu, a, n); // warm-up: pipeline, pooled buffers, bind groups
  const c0 = { ...gpu.recorded };
  const runs = [];
  for (let i = 0; i < o.reps; i++) runs.push(await chain(gpu, a, n));
  const c = since(c0, gpu);
  gpu.release(a);
  const s = median(runs.map((r) => r.s));
  const recordUs = (median(runs.map((r) => r.recordS)) / n) * 1e6;
  const torch = await hf.request<HfTimed>({ op: 'chain', n, size: CHAIN_SIZE, reps: o.reps });
  return record({
    case: 'host-overhead-dispatch',
    shape: [n, CHAIN_SIZE],
    dtype: 'f32',
    unit: 'dispatches/s',
    ours: n / s,
    baseline: n / torch.s,
    note: `chain of ${n} adds on ${CHAIN_SIZE} floats, one read at the end; baseline torch.add ops/s (eager); ours ${((s / n) * 1e6).toFixed(1)} µs per dispatch, of which recording ${recordUs.toFixed(1)}; ${(c.passes / o.reps).toFixed(0)} pass(es), ${(c.submissions / o.reps).toFixed(0)} submission(s) per chain`,
  });
}

async function benchDecode(gpu: Gpu, hf: HfBaseline, family: Family, dir: string, o: HostBenchOptions): Promise<BenchRecord> {
  const newTokens = o.quick ? 4 : 32;
  const steps = newTokens - 1;
  const m = await (await openModel(nodeDirectory(dir))).load(gpu);
  const x = m.prepare({ prompt: QUESTION, chat: m.capabilities.chatTemplate }, readImageFile(IMAGE));
  await hf.load(dir);
  await hf.inputs(dir, x);
  await generate(gpu, m, x, newTokens, undefined, { stopAtEos: false }); // warm-up
  const gens = [];
  const counts: Counts[] = [];
  for (let i = 0; i < o.reps; i++) {
    const c0 = { ...gpu.recorded };
    gens.push(await generate(gpu, m, x, newTokens, undefined, { stopAtEos: false }));
    counts.push(since(c0, gpu));
  }
  const decodeS = median(gens.map((g) => g.decodeMs / 1000));
  const hfDecode = await hf.request<HfTimed & { tokens: number[] }>({ op: 'decode', new_tokens: newTokens, reps: o.reps, attn: 'eager' });
  const tokens = gens.at(-1)!.tokens;
  if (tokens.join() !== hfDecode.tokens.join()) throw new Error(`host-overhead ${family}: greedy tokens differ from HF's: phaselens ${tokens.join(',')}, HF ${hfDecode.tokens.join(',')}`);
  // per token over the whole generate (prefill included, amortised): what one step records
  const per = (k: keyof Counts) => counts[0][k] / newTokens;
  const dispatchUs = (decodeS / steps / per('dispatches')) * 1e6;
  return record({
    case: `host-overhead-${family}-decode`,
    shape: [newTokens],
    dtype: 'f32',
    unit: 'tokens/s',
    ours: steps / decodeS,
    baseline: steps / hfDecode.s,
    note: `make-tiny ${family} (seed 0, f32); ${steps} KV-cached steps after the prefill, EOS ignored, tokens = HF's; baseline HF transformers eager attention; per token (generate's total / tokens) ${per('dispatches').toFixed(1)} dispatches, ${per('copies').toFixed(1)} copies, ${per('passes').toFixed(1)} passes, ${per('submissions').toFixed(1)} submissions, ${dispatchUs.toFixed(0)} µs per dispatch`,
  });
}

export async function benchHostOverhead(gpu: Gpu, o: HostBenchOptions): Promise<{ records: BenchRecord[]; settings: string }> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-host-'));
  const { hf, versions } = await HfBaseline.start();
  const records: BenchRecord[] = [];
  const add = (r: BenchRecord) => {
    records.push(r);
    o.onRecord?.(r);
  };
  try {
    if (o.chain ?? true) add(await benchChain(gpu, hf, o));
    for (const family of o.families ?? HOST_FAMILIES) {
      const dir = join(work, family);
      await makeTiny({ arch: family, out: dir, seed: 0, dtype: 'f32' });
      add(await benchDecode(gpu, hf, family, dir, o));
    }
    const load = loadavg()[0];
    // torch's worker threads wait for each other at every op: with other work on the cores its
    // per-op time grows many-fold (tiny LLaVA decode, this machine: 1.2 ms/token at load 0.6,
    // 25–140 ms at load 5–14), far more than ours, so a busy machine flatters the ratios
    const busy = load > cpus().length ? `; load above the ${cpus().length} cores: torch eager slows far more than phaselens under contention, so these ratios flatter phaselens; rerun on an idle machine` : '';
    return { records, settings: `host-overhead: ${hfSettings(versions)}; warm-up + median of ${o.reps}; load average ${load.toFixed(2)} at the group's end${busy}` };
  } finally {
    hf.close();
    rmSync(work, { recursive: true, force: true });
  }
}
