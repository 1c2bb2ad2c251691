/**
 * The Chameleon benchmark (issue 21): phaselens on the WebGPU adapter vs HF transformers'
 * ChameleonForConditionalGeneration on the CPU (bench/hf_baseline.py), with the models
 * group's settings: float32 weights on both sides, torch threads = cores, the same prepared
 * ids and pixels, one warm-up then the median of `reps` on both sides, start-up and loading
 * outside every figure.
 *   chameleon-vq-encode-vs-hf  s: pixel_values → the image's BPE ids (ours: the VQ model
 *                              alone, the ids read back; HF: model.model.get_image_tokens);
 *                              the ids must be HF's
 *   chameleon-prefill-vs-hf    s: VQ encode + the LM over image and prompt, logits of the
 *                              last position (HF: logits_to_keep=1, no KV cache, SDPA); the
 *                              text columns within 1e-3 of HF's (max |Δ| / max |HF|), the
 *                              image-token columns −FLT_MAX on both sides
 *   chameleon-gate-vs-hf       s/image: `phaselens gate` on one image (separation quartiles
 *                              per hidden state, attention share per image-side position per
 *                              layer) vs an HF eager forward with output_hidden_states +
 *                              output_attentions and the same quantities in torch; medians
 *                              within 2 histogram bins + 1e-3, of_all within 1e-3
 *   chameleon-gate-memory      MiB: the peak GPU memory (live tensors + the buffer pool) of
 *                              one gate run's language-model part, beyond what is held when
 *                              the image's ids are ready (weights, ids, the pool), at L
 *                              layers (ours) and L/2 (baseline), each on a fresh device:
 *                              ratio ≈ 1 says O(one layer); the note gives the difference
 *                              and what keeping L layers of attention maps [H, S, S] f32
 *                              would add
 * Checkpoints: make-random --shape chameleon-mid --dtype f32 (the 7B's VQ layout at 32
 * base channels and 256 px: 256 image tokens; the mid LLaMA, 8 layers; ~0.19 B parameters)
 * and the same with --layers 4 for the memory case; --quick: make-tiny's chameleon
 * (3 layers; 1 for the memory case).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { runLast } from '../src/interventions/answer.ts';
import type { ChameleonConfig } from '../src/io/config-chameleon.ts';
import type { DataItem } from '../src/data/item.ts';
import { readImageFile } from '../src/io/load-node.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { HookPoints } from '../src/hooks/hooks.ts';
import { ChameleonVQVAE } from '../src/models/chameleon-vq.ts';
import { openModel, validateCheckpoint } from '../src/models/registry.ts';
import type { Vlm } from '../src/models/vlm.ts';
import { checkpointSource, Weights } from '../src/models/weights.ts';
import { COS_BINS } from '../src/ops/pair-cos-hist.ts';
import { gateItem, type GateRun } from '../src/pipeline/gate.ts';
import { gatePositions, gateQueries, imageTokens, separationText, type AttentionShare, type SeparationCurve } from '../src/probes/gate.ts';
import { makeRandom } from '../weights-tools/make-random.ts';
import { makeTiny } from '../weights-tools/make-tiny.ts';
import { HfBaseline, hfSettings, timeWarm, type HfTimed } from './hf.ts';
import { IMAGE, LOGITS_TOL, maxRelDiff, QUESTION } from './models.ts';
import type { BenchRecord } from './record.ts';

export const CHAMELEON_CASES = ['chameleon-vq-encode-vs-hf', 'chameleon-prefill-vs-hf', 'chameleon-gate-vs-hf', 'chameleon-gate-memory'];
const VS_HF = 'time-ratio-vs-hf';
const FLT_MIN = -3.4028234663852886e38;
/** |Δ| of the attention shares (of_all) and of the separation quartiles beyond the histogram's 2 bins. */
const GATE_TOL = 1e-3;
const MiB = 2 ** 20;

export interface ChameleonBenchOptions {
  reps: number;
  quick: boolean;
  onRecord?: (r: BenchRecord) => void;
}

/** The gate run's options as `phaselens gate` would take them (one unlabelled image, every image-side position). */
function gateRun(m: Vlm, out: string): GateRun {
  return { out, data: 'bench', prompt: { prompt: m.promptFor(QUESTION, false) }, padToSquare: false, positions: [], dropBos: false, bins: COS_BINS };
}

const ITEM: DataItem = { id: 'cats', image: IMAGE, captions: [], meta: {} };

/** What a gate result holds of the measures (pipeline/gate.ts's item JSON). */
interface GateMeasures {
  separation: SeparationCurve;
  attention: AttentionShare;
}

/** The VQ model of a Chameleon checkpoint alone (the bench's own copy of its weights). */
async function loadVq(gpu: Gpu, dir: string): Promise<ChameleonVQVAE> {
  const report = await validateCheckpoint(nodeDirectory(dir));
  const cfg = report.config as ChameleonConfig;
  try {
    return await ChameleonVQVAE.load(new Weights(gpu, checkpointSource(report.checkpoint)).pp('model.vqmodel'), cfg.vq_config, cfg.image_code_ids, new HookPoints());
  } finally {
    await report.checkpoint.close();
  }
}

/** Last logits vs HF's: the text columns by max |Δ| / max |HF|; the masked image-token columns must be masked in ours too. */
function lastLogitsDiff(ours: Float32Array, ref: number[]): number {
  const text = ref.flatMap((r, i) => (r > FLT_MIN ? [i] : []));
  const masked = ref.length - text.length;
  const oursMasked = ours.filter((v) => v === FLT_MIN).length;
  if (oursMasked !== masked) throw new Error(`chameleon last logits: HF masks ${masked} image-token columns, phaselens ${oursMasked}`);
  return maxRelDiff(Float32Array.from(text, (i) => ours[i]), text.map((i) => ref[i]));
}

async function benchCheckpoint(gpu: Gpu, hf: HfBaseline, label: string, dir: string, o: ChameleonBenchOptions, work: string): Promise<BenchRecord[]> {
  const m = await (await openModel(nodeDirectory(dir))).load(gpu);
  await hf.load(dir);
  const x = m.prepare({ prompt: m.promptFor(QUESTION, false) }, readImageFile(IMAGE));
  await hf.inputs(dir, x);
  const out: BenchRecord[] = [];
  const add = (r: Omit<BenchRecord, 'ratio'>) => {
    const rec = { ...r, ratio: r.ours / r.baseline };
    out.push(rec);
    o.onRecord?.(rec);
  };
  const seq = x.ids.length;
  const px = `pixel_values [${x.pixels!.shape.join(', ')}]`;

  const vq = await loadVq(gpu, dir);
  let ids: number[] = [];
  const vqS = await timeWarm(o.reps, async () => {
    const t = vq.imageTokenIds(gpu, x.pixels!);
    ids = [...(await gpu.read(t))];
    gpu.release(t);
  });
  const hfVq = await hf.request<HfTimed & { ids: number[] }>({ op: 'vq', reps: o.reps });
  const wrong = ids.filter((id, i) => id !== hfVq.ids[i]).length;
  if (ids.length !== hfVq.ids.length || wrong) throw new Error(`chameleon ${label}: ${wrong} of ${hfVq.ids.length} image token ids differ from HF's`);
  add({ case: 'chameleon-vq-encode-vs-hf', shape: [ids.length], dtype: 'f32', unit: 's', ours: vqS, baseline: hfVq.s, ratio_name: VS_HF, note: `${label}; ${px} → ${ids.length} ids (${new Set(ids).size} distinct), = HF's` });

  let logits: Float32Array = new Float32Array();
  const prefillS = await timeWarm(o.reps, async () => {
    logits = (await runLast(gpu, m.languageModel, () => m.forward(gpu, x))).logits;
  });
  const hfPrefill = await hf.request<HfTimed & { last_logits: number[] }>({ op: 'prefill', reps: o.reps });
  const rel = lastLogitsDiff(logits, hfPrefill.last_logits);
  if (!(rel <= LOGITS_TOL)) throw new Error(`chameleon ${label}: last logits differ from HF's by ${rel.toExponential(2)} (max |Δ| / max |HF|; tolerance ${LOGITS_TOL})`);
  add({ case: 'chameleon-prefill-vs-hf', shape: [seq], dtype: 'f32', unit: 's', ours: prefillS, baseline: hfPrefill.s, ratio_name: VS_HF, note: `${label}; ${px}, VQ encode + LM; last logits only; vs HF max |Δ| / max |HF| = ${rel.toExponential(1)} (text columns)` });

  const run = gateRun(m, work);
  let gate: GateMeasures | undefined;
  const gateS = await timeWarm(o.reps, async () => {
    gate = (await gateItem(gpu, m, ITEM, run)) as unknown as GateMeasures;
  });
  const side = gatePositions(x.groups);
  const hfGate = await hf.request<HfTimed & { separation: number[][]; of_all: number[][] }>({
    op: 'gate',
    reps: o.reps,
    queries: gateQueries(x.groups),
    groups: side.map((g) => g.positions),
    image: imageTokens(x.groups),
    text: separationText(x.groups, false),
  });
  const gateDiff = compareGate(gate!, hfGate, side.map((g) => g.name), run.bins);
  add({ case: 'chameleon-gate-vs-hf', shape: [seq], dtype: 'f32', unit: 's/image', ours: gateS, baseline: hfGate.s, ratio_name: VS_HF, note: `${label}; separation + attention share (${side.map((g) => g.name).join(', ')}); vs HF: ${gateDiff}` });
  return out;
}

/** Ours vs HF's gate measures; throws past the tolerances, else says how close. */
function compareGate(ours: GateMeasures, hf: { separation: number[][]; of_all: number[][] }, names: string[], bins: number): string {
  const s = ours.separation;
  const medians: number[] = [...s.median, s.last_layer_prenorm.median];
  const quart = (k: 'q1' | 'q3', i: number) => (i < s[k].length ? s[k][i] : s.last_layer_prenorm[k]);
  let sep = 0;
  hf.separation.forEach(([q1, med, q3], i) => (sep = Math.max(sep, Math.abs(quart('q1', i) - q1), Math.abs(medians[i] - med), Math.abs(quart('q3', i) - q3))));
  let share = 0;
  hf.of_all.forEach((row, l) => row.forEach((v, g) => (share = Math.max(share, Math.abs(ours.attention.groups[names[g]].of_all[l] - v)))));
  const sepTol = 2 / bins + GATE_TOL;
  if (hf.separation.length !== medians.length) throw new Error(`chameleon gate: ${medians.length} separation rows, HF ${hf.separation.length}`);
  if (!(sep <= sepTol) || !(share <= GATE_TOL)) throw new Error(`chameleon gate: separation quartiles off HF's by ${sep.toExponential(2)} (tolerance ${sepTol.toExponential(2)}), attention of_all by ${share.toExponential(2)} (tolerance ${GATE_TOL})`);
  return `quartiles max |Δ| ${sep.toExponential(1)}, of_all max |Δ| ${share.toExponential(1)}`;
}

/**
 * The peak GPU memory of one gate run's language-model part on a fresh device: the peak is
 * restarted when the image's ids are ready (hook vq.image_token_ids), from what is held then.
 */
async function gatePeak(dir: string, work: string): Promise<{ bytes: number; layers: number; seq: number; heads: number }> {
  const gpu = await createNodeGpu();
  try {
    const m = await (await openModel(nodeDirectory(dir))).load(gpu);
    const x = m.prepare({ prompt: m.promptFor(QUESTION, false) }, readImageFile(IMAGE));
    let held = 0;
    const undo = m.hooks.add('vq.image_token_ids', () => {
      held = gpu.allocated;
      gpu.peakAllocated = held;
    });
    await gateItem(gpu, m, ITEM, gateRun(m, work));
    undo();
    const cfg = m.languageModel.cfg;
    return { bytes: gpu.peakAllocated - held, layers: cfg.num_hidden_layers, seq: x.ids.length, heads: cfg.num_attention_heads };
  } finally {
    gpu.destroy();
  }
}

async function benchMemory(label: string, full: string, half: string, work: string, o: ChameleonBenchOptions): Promise<BenchRecord> {
  const a = await gatePeak(full, work);
  const b = await gatePeak(half, work);
  const maps = (p: typeof a) => (p.layers * p.heads * p.seq * p.seq * 4) / MiB;
  const rec: BenchRecord = {
    case: 'chameleon-gate-memory',
    shape: [a.layers, b.layers, a.seq],
    dtype: 'f32',
    unit: 'MiB',
    ours: a.bytes / MiB,
    baseline: b.bytes / MiB,
    ratio: a.bytes / b.bytes,
    ratio_name: 'memory-ratio-L-vs-L/2',
    note: `${label}; peak GPU memory of the gate's LM part (live tensors + pool, beyond what is held when the image's ids are ready) at ${a.layers} vs ${b.layers} layers: +${((a.bytes - b.bytes) / MiB).toFixed(2)} MiB; keeping every layer's attention maps [${a.heads}, ${a.seq}, ${a.seq}] f32 would add ${(maps(a) - maps(b)).toFixed(1)} (${maps(a).toFixed(1)} MiB at ${a.layers} layers)`,
  };
  o.onRecord?.(rec);
  return rec;
}

export async function benchChameleon(gpu: Gpu, o: ChameleonBenchOptions): Promise<{ records: BenchRecord[]; settings: string }> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-chameleon-'));
  const { hf, versions } = await HfBaseline.start();
  try {
    const full = join(work, 'full');
    const half = join(work, 'half');
    let label: string;
    if (o.quick) {
      label = 'tiny';
      await makeTiny({ arch: 'chameleon', out: full, seed: 0, dtype: 'f32', layers: 2 });
      await makeTiny({ arch: 'chameleon', out: half, seed: 0, dtype: 'f32', layers: 1 });
    } else {
      label = 'chameleon-mid';
      await makeRandom({ shape: label, out: full, dtype: 'f32' });
      await makeRandom({ shape: label, out: half, dtype: 'f32', layers: 4 });
    }
    const records = await benchCheckpoint(gpu, hf, label, full, o, join(work, 'gate'));
    records.push(await benchMemory(label, full, half, join(work, 'gate'), o));
    return { records, settings: `chameleon: ${hfSettings(versions)}; float32 weights on both sides; warm-up + median of ${o.reps}` };
  } finally {
    hf.close();
    rmSync(work, { recursive: true, force: true });
  }
}
