/**
 * Model benchmarks for each family (FAMILY = llava | instructblip | llava_next): phaselens on the WebGPU
 * adapter vs HF transformers on the CPU (bench/hf_baseline.py, one process for the group,
 * torch.set_num_threads(cores)), on the same checkpoint and the same prepared ids and pixels,
 * in the same run. Both sides: float32 weights, one warm-up then the median of `reps`.
 *   FAMILY-load-vs-hf         s: opening + loading the weights (phaselens: openModel + load;
 *                             HF: from_pretrained), one cold sample each, outside every
 *                             other figure; HF's import of torch + transformers is in the note
 *   FAMILY-prefill-vs-hf      s: one forward over image + prompt, logits of the last position
 *                             only (HF: logits_to_keep=1, no KV cache, SDPA)
 *   FAMILY-decode-vs-hf       s/token: greedy steps with the KV cache after the prefill, EOS
 *                             ignored on both sides, the same number of new tokens; the tokens
 *                             must be HF's
 *   FAMILY-analyze-vs-hf      s/image: every probe of `phaselens analyze` (contextualization,
 *                             norm attention of the last query, LogitLens top-5 at every
 *                             layer) vs an HF eager forward with output_hidden_states +
 *                             output_attentions and the same metrics in torch
 *                             (bench/gpu/hf_metrics.py). Ours also preprocesses the image.
 *   FAMILY-analyze-overhead   s/image: analyze vs phaselens's own plain prefill
 * Every *-vs-hf ratio is "time-ratio-vs-hf" = phaselens time / transformers time (lower is
 * better). The prefill's last logits are compared with HF's (max |Δ| / max |HF| ≤ 1e-3:
 * float32 on both sides, summed in different orders; parity tests see ~1e-6).
 * Checkpoints: make-tiny --arch FAMILY (seed 0, f32) and make-random --shape llava-mid /
 * instructblip-mid / llava-next-mid --dtype f32 (~0.19 / 0.21 / 0.19 B parameters;
 * llava-next-mid: 224-px tiles, the cats image as 2×2 tiles + base view, ~1.1k tokens, HF
 * given the same pixel_values [views, 3, H, W] and image_sizes); --quick: the tiny ones
 * only, 4 new tokens. Prompts: the same question, in the chat template where the family
 * has one (LLaVA, LLaVA-NeXT); InstructBLIP's instruction as it is.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import { analyzeImage } from '../src/analysis/analyze-image.ts';
import { runLast } from '../src/interventions/answer.ts';
import { readImageFile } from '../src/io/load-node.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { generate } from '../src/models/generate.ts';
import { openModel } from '../src/models/registry.ts';
import type { Family, PromptSpec, Vlm } from '../src/models/vlm.ts';
import { makeRandom } from '../weights-tools/make-random.ts';
import { makeTiny } from '../weights-tools/make-tiny.ts';
import { HfBaseline, hfSettings, median, timeWarm, type HfTimed } from './hf.ts';
import type { BenchRecord } from './record.ts';

export const IMAGE = join(import.meta.dirname, '../test/fixtures/images/000000039769.png');
export const QUESTION = 'Please describe everything you can see in this picture, including the animals, the objects and the colours.';
export const LOGITS_TOL = 1e-3;

/** The families benchmarked, each with its mid-size make-random shape. */
export const MID_SHAPE: Record<Family, string> = { llava: 'llava-mid', instructblip: 'instructblip-mid', llava_next: 'llava-next-mid' };
export const MODEL_CASES = ['load-vs-hf', 'prefill-vs-hf', 'decode-vs-hf', 'analyze-vs-hf', 'analyze-overhead'];
const VS_HF = 'time-ratio-vs-hf';

export interface ModelBenchOptions {
  reps: number;
  quick: boolean;
  /** Default: every family of MID_SHAPE. */
  families?: Family[];
  onRecord?: (r: BenchRecord) => void;
}

export function maxRelDiff(ours: Float32Array, ref: number[]): number {
  if (ours.length !== ref.length) throw new Error(`last logits: phaselens has ${ours.length} entries, HF ${ref.length}`);
  let diff = 0;
  let scale = 0;
  ref.forEach((r, i) => {
    diff = Math.max(diff, Math.abs(ours[i] - r));
    scale = Math.max(scale, Math.abs(r));
  });
  return scale > 0 ? diff / scale : diff;
}

async function benchCheckpoint(gpu: Gpu, hf: HfBaseline, label: string, dir: string, o: ModelBenchOptions & { newTokens: number }): Promise<BenchRecord[]> {
  const t0 = performance.now();
  const m: Vlm = await (await openModel(nodeDirectory(dir))).load(gpu);
  const oursLoadS = (performance.now() - t0) / 1000;
  const hfLoadS = await hf.load(dir);
  const f = m.family;
  const prompt: PromptSpec = { prompt: QUESTION, chat: m.capabilities.chatTemplate };
  const x = m.prepare(prompt, readImageFile(IMAGE));
  await hf.inputs(dir, x);
  const seq = x.ids.length;
  const shape = [seq];
  const out: BenchRecord[] = [];
  const add = (r: Omit<BenchRecord, 'ratio'>) => {
    const rec = { ...r, ratio: r.ours / r.baseline };
    out.push(rec);
    o.onRecord?.(rec);
  };
  add({ case: `${f}-load-vs-hf`, shape, dtype: 'f32', unit: 's', ours: oursLoadS, baseline: hfLoadS, ratio_name: VS_HF, note: `${label}; one sample each (files in the page cache)` });

  let logits: Float32Array = new Float32Array();
  const prefillS = await timeWarm(o.reps, async () => {
    logits = (await runLast(gpu, m.languageModel, () => m.forward(gpu, x))).logits;
  });
  const hfPrefill = await hf.request<HfTimed & { last_logits: number[] }>({ op: 'prefill', reps: o.reps });
  const rel = maxRelDiff(logits, hfPrefill.last_logits);
  if (!(rel <= LOGITS_TOL)) throw new Error(`${f} ${label}: last logits differ from HF's by ${rel.toExponential(2)} (max |Δ| / max |HF|; tolerance ${LOGITS_TOL})`);
  add({ case: `${f}-prefill-vs-hf`, shape, dtype: 'f32', unit: 's', ours: prefillS, baseline: hfPrefill.s, ratio_name: VS_HF, note: `${label}; pixel_values [${x.pixels?.shape.join(', ')}]; last logits only; vs HF max |Δ| / max |HF| = ${rel.toExponential(1)}; peak GPU buffers ${(gpu.peakAllocated / 2 ** 20).toFixed(0)} MiB` });

  const steps = o.newTokens - 1;
  const gens = [];
  for (let i = 0; i <= o.reps; i++) gens.push(await generate(gpu, m, x, o.newTokens, undefined, { stopAtEos: false }));
  const decodeS = median(gens.slice(1).map((g) => g.decodeMs / 1000)) / steps; // gens[0]: the warm-up
  const hfDecode = await hf.request<HfTimed & { tokens: number[] }>({ op: 'decode', new_tokens: o.newTokens, reps: o.reps });
  const tokens = gens.at(-1)!.tokens;
  const same = tokens.length === hfDecode.tokens.length && tokens.every((t, i) => t === hfDecode.tokens[i]);
  if (!same) throw new Error(`${f} ${label}: greedy tokens differ from HF's: phaselens ${tokens.join(',')}, HF ${hfDecode.tokens.join(',')}`);
  add({ case: `${f}-decode-vs-hf`, shape: [o.newTokens], dtype: 'f32', unit: 's/token', ours: decodeS, baseline: hfDecode.s / steps, ratio_name: VS_HF, note: `${label}; ${steps} KV-cached steps after the prefill, EOS ignored; tokens = HF's` });

  const item = { id: 'cats', image: IMAGE, captions: ['two cats lying on a pink couch with remotes'] };
  const image = readImageFile(IMAGE);
  const opts = { prompt, dropBos: false, topk: 5, smooth: 1, padToSquare: false };
  const analyzeS = await timeWarm(o.reps, () => analyzeImage(gpu, m, item, image, opts));
  const hfAnalyze = await hf.request<HfTimed>({ op: 'analyze', k: 5, reps: o.reps });
  add({ case: `${f}-analyze-vs-hf`, shape, dtype: 'f32', unit: 's/image', ours: analyzeS, baseline: hfAnalyze.s, ratio_name: VS_HF, note: `${label}; HF: eager forward with hidden states + attentions, metrics in torch` });
  add({ case: `${f}-analyze-overhead`, shape, dtype: 'f32', unit: 's/image', ours: analyzeS, baseline: prefillS, ratio_name: 'time-ratio-vs-plain-forward', note: `${label}; all probes vs phaselens's plain prefill` });
  return out;
}

export async function benchModels(gpu: Gpu, o: ModelBenchOptions): Promise<{ records: BenchRecord[]; settings: string }> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-models-'));
  const { hf, versions } = await HfBaseline.start();
  const newTokens = o.quick ? 4 : 16;
  try {
    const records: BenchRecord[] = [];
    for (const family of o.families ?? Object.keys(MID_SHAPE)) {
      const tiny = join(work, `${family}-tiny`);
      await makeTiny({ arch: family, out: tiny, seed: 0, dtype: 'f32' });
      const dirs: [string, string][] = [['tiny', tiny]];
      if (!o.quick) {
        const mid = join(work, MID_SHAPE[family]);
        await makeRandom({ shape: MID_SHAPE[family], out: mid, dtype: 'f32' });
        dirs.push([MID_SHAPE[family], mid]);
      }
      for (const [label, dir] of dirs) records.push(...(await benchCheckpoint(gpu, hf, label, dir, { ...o, newTokens })));
    }
    return { records, settings: `models: ${hfSettings(versions)}; float32 weights on both sides; ${newTokens} new tokens; warm-up + median of ${o.reps}` };
  } finally {
    hf.close();
    rmSync(work, { recursive: true, force: true });
  }
}
