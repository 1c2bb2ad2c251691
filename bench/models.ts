/**
 * Model benchmarks for each family (FAMILY = llava | instructblip), each against the
 * family's PyTorch reference (test/reference/llava_ref.py / instructblip_ref.py,
 * /usr/bin/python3, CPU, f32) on the same checkpoint in the same run:
 *   FAMILY-prefill             image + prompt tokens, tokens/s (baseline: PyTorch prefill)
 *   FAMILY-decode              greedy tokens/s with the KV cache (baseline: PyTorch with its KV cache)
 *   FAMILY-analyze-overhead    s per image, all probes vs the plain forward (baseline)
 *   FAMILY-analyze-vs-pytorch  s per image vs PyTorch computing the same metrics from
 *                              output_hidden_states / output_attentions (test/reference/metrics_ref.py;
 *                              its wall time includes starting Python and loading the weights)
 * Prompts: the same question, in LLaVA's chat template; InstructBLIP's instruction as it is.
 * Checkpoints: make-tiny --arch FAMILY (seed 0, f16) and make-random --shape llava-mid /
 * instructblip-mid (~0.19 / 0.21 B parameters).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import { analyzeImage } from '../src/analysis/analyze-image.ts';
import { readImageFile } from '../src/io/load-node.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { generate } from '../src/models/generate.ts';
import { openModel } from '../src/models/registry.ts';
import type { Family, PromptSpec, Vlm, VlmInput } from '../src/models/vlm.ts';
import { makeRandom } from '../weights-tools/make-random.ts';
import { makeTiny } from '../weights-tools/make-tiny.ts';
import { runMetricsReference } from '../test/reference/metrics-ref.ts';
import { INSTRUCTBLIP_REF_SCRIPT, LLAVA_REF_SCRIPT, runPython } from '../test/reference/pyref.ts';
import type { BenchRecord } from './record.ts';

const IMAGE = join(import.meta.dirname, '../test/fixtures/images/000000039769.png');
const QUESTION = 'Please describe everything you can see in this picture, including the animals, the objects and the colours.';
const NEW_TOKENS = 16;

const PROMPT: Record<Family, PromptSpec> = {
  llava: { prompt: QUESTION, chat: true },
  instructblip: { prompt: QUESTION },
};
const REF_SCRIPT: Record<Family, string> = { llava: LLAVA_REF_SCRIPT, instructblip: INSTRUCTBLIP_REF_SCRIPT };
const MID_SHAPE: Record<Family, string> = { llava: 'llava-mid', instructblip: 'instructblip-mid' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(n: number, f: () => Promise<void>): Promise<number> {
  await f(); // warm-up: pipelines compiled, shaders JIT-ed
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    t.push((performance.now() - t0) / 1000);
  }
  return median(t);
}

/** The reference's `--time-only` figures for the same input. */
async function torchTimes(family: Family, dir: string, x: VlmInput): Promise<{ prefill_s: number; decode_tok_s: number }> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-'));
  try {
    const px = join(work, 'px.f32');
    const { data, shape } = x.pixels!;
    writeFileSync(px, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const args = [REF_SCRIPT[family], '--model', dir, '--pixel-values', px, '--pixel-shape', shape.join(','), '--input-ids', x.ids.join(',')];
    if (x.qformerIds) args.push(`--qformer-input-ids=${x.qformerIds.join(',')}`);
    const { stdout } = await runPython([...args, '--time-only', '--repeats', '3', '--max-new-tokens', String(NEW_TOKENS)]);
    return JSON.parse(stdout.trim().split('\n').pop()!);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function benchCheckpoint(gpu: Gpu, label: string, dir: string, m: Vlm): Promise<BenchRecord[]> {
  const f = m.family;
  const prompt = PROMPT[f];
  const x = m.prepare(prompt, readImageFile(IMAGE));
  const seq = x.ids.length;
  const out: BenchRecord[] = [];
  const prefillS = await timeIt(3, async () => {
    gpu.release(m.forward(gpu, x));
    await gpu.sync();
  });
  const g = await generate(gpu, m, x, NEW_TOKENS);
  const decodeTokS = (g.tokens.length - 1) / (g.decodeMs / 1000);
  const torch = await torchTimes(f, dir, x);
  const shape = [seq];
  out.push({ case: `${f}-prefill`, shape, dtype: 'f16', unit: 'tokens/s', ours: seq / prefillS, baseline: seq / torch.prefill_s, ratio: torch.prefill_s / prefillS, note: `${label}; peak GPU buffers ${(gpu.peakAllocated / 2 ** 20).toFixed(0)} MiB` });
  out.push({ case: `${f}-decode`, shape: [NEW_TOKENS], dtype: 'f16', unit: 'tokens/s', ours: decodeTokS, baseline: torch.decode_tok_s, ratio: decodeTokS / torch.decode_tok_s, note: label });

  const item = { id: 'cats', image: IMAGE, captions: ['two cats lying on a pink couch with remotes'] };
  const image = readImageFile(IMAGE);
  const opts = { prompt, dropBos: false, topk: 5, smooth: 1, padToSquare: false };
  const analyzeS = await timeIt(2, async () => {
    await analyzeImage(gpu, m, item, image, opts);
  });
  out.push({ case: `${f}-analyze-overhead`, shape, dtype: 'f16', unit: 's/image', ours: analyzeS, baseline: prefillS, ratio: analyzeS / prefillS, note: `${label}; all probes (contextualization, norm attention, LogitLens over every layer) vs the plain forward` });
  const { data, shape: pixelShape } = x.pixels!;
  const t0 = performance.now();
  await runMetricsReference({ model: dir, pixelValues: data, pixelShape, inputIds: x.ids, qformerInputIds: x.qformerIds, k: 5 });
  const torchS = (performance.now() - t0) / 1000;
  out.push({ case: `${f}-analyze-vs-pytorch`, shape, dtype: 'f16', unit: 's/image', ours: analyzeS, baseline: torchS, ratio: analyzeS / torchS, note: `${label}; PyTorch wall time includes Python start-up and weight loading` });
  return out;
}

export async function benchModels(gpu: Gpu): Promise<BenchRecord[]> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-models-'));
  try {
    const records: BenchRecord[] = [];
    for (const family of ['llava', 'instructblip'] as const) {
      const tiny = join(work, `${family}-tiny`);
      await makeTiny({ arch: family, out: tiny, seed: 0, dtype: 'f16' });
      const mid = join(work, MID_SHAPE[family]);
      await makeRandom({ shape: MID_SHAPE[family], out: mid });
      for (const [label, dir] of [['tiny', tiny], [MID_SHAPE[family], mid]] as const) {
        const m = await (await openModel(nodeDirectory(dir))).load(gpu);
        records.push(...(await benchCheckpoint(gpu, label, dir, m)));
      }
    }
    return records;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
