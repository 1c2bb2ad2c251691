/**
 * Intervention benchmarks on make-random --shape llava-deep --dtype f32 (32 decoder layers,
 * the depth of LLaVA-1.5-7B; 256 image tokens) and --shape llava-next-mid (8 layers; the
 * cats image as 2×2 tiles + base view, ~1.1k tokens; cases prefixed `llava_next-`);
 * --quick: make-tiny's LLaVA and LLaVA-NeXT. In the same run, per checkpoint:
 *   knockout-sweep-vs-naive  one item's knockout sweep (flow last<-image, window 9, every
 *                            layer as centre; src/interventions/knockout.ts re-runs only the
 *                            window's layers and the rows from the first DST position) vs
 *                            the naive re-run: L × (full forward + last logits), the full
 *                            forward timed here. ratio "time-ratio-vs-naive" = sweep / naive
 *                            (lower is better; the target is ≤ 0.6).
 *   knockout-sweep-vs-hf     the same sweep by HF transformers (bench/hf_baseline.py: the
 *                            un-intervened forward, then one full forward per centre with
 *                            the window's attention edges blocked, SDPA, last logits only),
 *                            in one long-lived process with the weights loaded beforehand,
 *                            float32, torch threads = cores. The answer and every p must
 *                            match ours (relative 1e-3: float32 on both sides).
 *                            ratio "time-ratio-vs-hf" = ours / HF (lower is better).
 * Both sides: one warm-up sweep, then the median of `reps`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import { readImageFile } from '../src/io/load-node.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { runLast } from '../src/interventions/answer.ts';
import { resolveGroup } from '../src/interventions/groups.ts';
import { knockoutSweep, layerWindow, type KnockoutResult } from '../src/interventions/knockout.ts';
import { openModel } from '../src/models/registry.ts';
import { makeRandom } from '../weights-tools/make-random.ts';
import { makeTiny } from '../weights-tools/make-tiny.ts';
import { HfBaseline, hfSettings, timeWarm, type HfTimed } from './hf.ts';
import type { BenchRecord } from './record.ts';

const IMAGE = join(import.meta.dirname, '../test/fixtures/images/000000039769.png');
const WINDOW = 9;
const P_TOL = 1e-3;

/** Each family's checkpoint (make-random shape) and the prefix of its case names. */
export const KNOCKOUT_CHECKPOINTS = [
  { family: 'llava', shape: 'llava-deep', prefix: '' },
  { family: 'llava_next', shape: 'llava-next-mid', prefix: 'llava_next-' },
];
export const KNOCKOUT_CASES = ['knockout-sweep-vs-naive', 'knockout-sweep-vs-hf'];

export interface InterventionBenchOptions {
  reps: number;
  quick: boolean;
  /** Default: every family of KNOCKOUT_CHECKPOINTS. */
  families?: string[];
  onRecord?: (r: BenchRecord) => void;
}

export async function benchInterventions(gpu: Gpu, o: InterventionBenchOptions): Promise<{ records: BenchRecord[]; settings: string }> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-interventions-'));
  const { hf, versions } = await HfBaseline.start();
  try {
    const records: BenchRecord[] = [];
    for (const c of KNOCKOUT_CHECKPOINTS.filter((c) => !o.families || o.families.includes(c.family))) {
      const dir = join(work, c.family);
      const label = o.quick ? `tiny ${c.family}` : c.shape;
      if (o.quick) await makeTiny({ arch: c.family, out: dir, seed: 0, dtype: 'f32' });
      else await makeRandom({ shape: c.shape, out: dir, dtype: 'f32' });
      for (const r of await benchSweep(gpu, hf, dir, label, c.prefix, o)) {
        records.push(r);
        o.onRecord?.(r);
      }
    }
    return { records, settings: `interventions: ${hfSettings(versions)}; float32 weights on both sides; warm-up + median of ${o.reps}` };
  } finally {
    hf.close();
    rmSync(work, { recursive: true, force: true });
  }
}

async function benchSweep(gpu: Gpu, hf: HfBaseline, dir: string, label: string, prefix: string, o: InterventionBenchOptions): Promise<BenchRecord[]> {
  const t0 = performance.now();
  const m = await (await openModel(nodeDirectory(dir))).load(gpu);
  const loadS = (performance.now() - t0) / 1000;
  const hfLoadS = await hf.load(dir);
  const x = m.prepare({ prompt: 'What is the animal on the left doing?', chat: m.capabilities.chatTemplate }, readImageFile(IMAGE));
  await hf.inputs(dir, x);
  const L = m.lm.num_hidden_layers;
  const flow = { name: 'last<-image', dst: resolveGroup('last', x.groups, x.ids.length), src: resolveGroup('image', x.groups, x.ids.length) };
  const fullS = await timeWarm(o.reps, () => runLast(gpu, m.languageModel, () => m.forward(gpu, x)));
  let ours: KnockoutResult | undefined;
  const sweepS = await timeWarm(o.reps, async () => {
    ours = await knockoutSweep(gpu, m, x, [flow], { window: WINDOW });
  });
  const naiveS = L * fullS;
  const entries = Array.from({ length: L }, (_, c) => {
    const [lo, hi] = layerWindow(c, WINDOW, L);
    return { dst: flow.dst, src: flow.src, layers: Array.from({ length: hi - lo + 1 }, (_, i) => lo + i) };
  });
  const ref = await hf.request<HfTimed & { answer: number; p_base: number; p: number[] }>({ op: 'knockout', entries, reps: o.reps });
  const r = ours!.flows[flow.name];
  const worst = Math.max(...[ours!.answer.p_base, ...r.p].map((p, i) => Math.abs(p - [ref.p_base, ...ref.p][i]) / Math.max([ref.p_base, ...ref.p][i], 1e-30)));
  if (ours!.answer.id !== ref.answer || !(worst <= P_TOL)) {
    throw new Error(`${label}: knockout sweep differs from HF's: answer ${ours!.answer.id} vs ${ref.answer}, worst relative p difference ${worst.toExponential(2)} (tolerance ${P_TOL})`);
  }
  const shape = [L, x.ids.length];
  return [
    { case: `${prefix}knockout-sweep-vs-naive`, shape, dtype: 'f32', unit: 's/item', ours: sweepS, baseline: naiveS, ratio: sweepS / naiveS, ratio_name: 'time-ratio-vs-naive', note: `${label}; ${L} centres × window ${WINDOW}; naive = ${L} × full forward (${fullS.toFixed(2)} s); ${L > WINDOW ? 'target ≤ 0.6' : `every window spans all ${L} layers, no target`}; loading (outside the figures) ${loadS.toFixed(2)} s` },
    { case: `${prefix}knockout-sweep-vs-hf`, shape, dtype: 'f32', unit: 's/item', ours: sweepS, baseline: ref.s, ratio: sweepS / ref.s, ratio_name: 'time-ratio-vs-hf', note: `${label}; HF: ${L + 1} full forwards, blocked edges in the additive mask; p within ${worst.toExponential(1)} of HF's; HF loading (outside the figures) ${hfLoadS.toFixed(2)} s` },
  ];
}
