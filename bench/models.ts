/**
 * Model benchmarks, each against the PyTorch reference (test/reference/llava_ref.py,
 * /usr/bin/python3, CPU, f32) on the same checkpoint in the same run:
 *   llava-prefill      image + ~30 text tokens, tokens/s (baseline: PyTorch prefill)
 *   llava-decode       greedy tokens/s with the KV cache (baseline: PyTorch with its KV cache)
 *   analyze-overhead   s per image, all probes vs the plain forward (baseline)
 *   analyze-vs-pytorch s per image vs PyTorch computing the same metrics from
 *                      output_hidden_states / output_attentions (test/reference/metrics_ref.py;
 *                      its wall time includes starting Python and loading the weights)
 * Checkpoints: make-tiny (seed 0) and make-random --shape llava-mid (~0.19 B parameters).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import { analyzeImage } from '../src/analysis/analyze-image.ts';
import { loadLlava, type LoadedLlava } from '../src/models/load.ts';
import { generate, loadPixels, prefill, promptIds } from '../src/models/run.ts';
import { makeRandom } from '../weights-tools/make-random.ts';
import { makeTiny } from '../weights-tools/make-tiny.ts';
import { runMetricsReference } from '../test/reference/metrics-ref.ts';
import type { BenchRecord } from './record.ts';


const IMAGE = join(import.meta.dirname, '../test/fixtures/images/000000039769.png');
const QUESTION = 'Please describe everything you can see in this picture, including the animals, the objects and the colours.';
const NEW_TOKENS = 16;

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

function torchTimes(dir: string, pixels: Float32Array, shape: readonly number[], ids: number[]): { prefill_s: number; decode_tok_s: number } {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-'));
  const px = join(work, 'px.f32');
  writeFileSync(px, new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength));
  const r = spawnSync('/usr/bin/python3', [join(import.meta.dirname, '../test/reference/llava_ref.py'), '--model', dir, '--pixel-values', px, '--pixel-shape', shape.join(','), '--input-ids', ids.join(','), '--time-only', '--repeats', '3', '--max-new-tokens', String(NEW_TOKENS)], { encoding: 'utf8' });
  rmSync(work, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`llava_ref.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function benchCheckpoint(gpu: Gpu, label: string, m: LoadedLlava): Promise<BenchRecord[]> {
  const pixels = loadPixels(m, IMAGE);
  const ids = promptIds(m, { prompt: QUESTION, chat: true }, true);
  const x = m.model.expand(ids, true);
  const seq = x.ids.length;
  const out: BenchRecord[] = [];
  const prefillS = await timeIt(3, async () => {
    gpu.release(prefill(gpu, m.model, x, pixels));
    await gpu.sync();
  });
  const g = await generate(gpu, m, x, pixels, NEW_TOKENS);
  const decodeTokS = (g.tokens.length - 1) / (g.decodeMs / 1000);
  const torch = torchTimes(m.dir, pixels.data, pixels.shape, ids);
  const shape = [seq];
  out.push({ case: 'llava-prefill', shape, dtype: 'f16', unit: 'tokens/s', ours: seq / prefillS, baseline: seq / torch.prefill_s, ratio: torch.prefill_s / prefillS, note: `${label}; peak GPU buffers ${(gpu.peakAllocated / 2 ** 20).toFixed(0)} MiB` });
  out.push({ case: 'llava-decode', shape: [NEW_TOKENS], dtype: 'f16', unit: 'tokens/s', ours: decodeTokS, baseline: torch.decode_tok_s, ratio: decodeTokS / torch.decode_tok_s, note: label });

  const item = { id: 'cats', image: IMAGE, captions: ['two cats lying on a pink couch with remotes'] };
  const opts = { prompt: { prompt: QUESTION, chat: true }, dropBos: false, topk: 5, smooth: 1, padToSquare: false };
  const analyzeS = await timeIt(2, async () => {
    await analyzeImage(gpu, m, item, opts);
  });
  out.push({ case: 'analyze-overhead', shape, dtype: 'f16', unit: 's/image', ours: analyzeS, baseline: prefillS, ratio: analyzeS / prefillS, note: `${label}; all probes (contextualization, norm attention, LogitLens over every layer) vs the plain prefill` });
  const t0 = performance.now();
  await runMetricsReference({ model: m.dir, pixelValues: pixels.data, pixelShape: [...pixels.shape] as [number, number, number], inputIds: ids, k: 5 });
  const torchS = (performance.now() - t0) / 1000;
  out.push({ case: 'analyze-vs-pytorch', shape, dtype: 'f16', unit: 's/image', ours: analyzeS, baseline: torchS, ratio: analyzeS / torchS, note: `${label}; PyTorch wall time includes Python start-up and weight loading` });
  return out;
}

export async function benchModels(gpu: Gpu): Promise<BenchRecord[]> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-models-'));
  try {
    const tiny = join(work, 'tiny');
    await makeTiny({ arch: 'llava', out: tiny, seed: 0, dtype: 'f16' });
    const mid = join(work, 'mid');
    await makeRandom({ shape: 'llava-mid', out: mid });
    const records: BenchRecord[] = [];
    for (const [label, dir] of [['tiny', tiny], ['llava-mid', mid]] as const) {
      const m = await loadLlava(gpu, dir);
      records.push(...(await benchCheckpoint(gpu, label, m)));
    }
    return records;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
