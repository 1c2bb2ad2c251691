/**
 * Intervention benchmarks on make-random --shape llava-deep (32 decoder layers, the depth
 * of LLaVA-1.5-7B; 256 image tokens), in the same run:
 *   knockout-sweep-vs-naive    one item's knockout sweep (flow last<-image, window 9, all 32
 *                              centre layers; src/interventions/knockout.ts re-runs only the
 *                              window's layers and the rows from the first DST position) vs
 *                              the naive re-run: 32 × (full forward + last logits), the full
 *                              forward timed here. ratio = sweep / naive (lower is better;
 *                              the target is ≤ 0.6).
 *   knockout-sweep-vs-pytorch  the same sweep by the PyTorch reference
 *                              (test/reference/interventions_ref.py --knockout, CPU, f32;
 *                              its wall time includes starting Python and loading the weights,
 *                              and its sweep re-runs every forward in full). ratio = ours / PyTorch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import { readImageFile } from '../src/io/load-node.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { runLast } from '../src/interventions/answer.ts';
import { resolveGroup } from '../src/interventions/groups.ts';
import { knockoutSweep } from '../src/interventions/knockout.ts';
import { openModel } from '../src/models/registry.ts';
import { makeRandom } from '../weights-tools/make-random.ts';
import { runKnockoutReference } from '../test/reference/interventions-ref.ts';
import type { BenchRecord } from './record.ts';

const IMAGE = join(import.meta.dirname, '../test/fixtures/images/000000039769.png');
const WINDOW = 9;

async function seconds(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

export async function benchInterventions(gpu: Gpu): Promise<BenchRecord[]> {
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-interventions-'));
  try {
    const dir = join(work, 'deep');
    await makeRandom({ shape: 'llava-deep', out: dir });
    const m = await (await openModel(nodeDirectory(dir))).load(gpu);
    const x = m.prepare({ prompt: 'What is the animal on the left doing?', chat: true }, readImageFile(IMAGE));
    const L = m.lm.num_hidden_layers;
    const flow = { name: 'last<-image', dst: resolveGroup('last', x.groups, x.ids.length), src: resolveGroup('image', x.groups, x.ids.length) };
    const full = () => runLast(gpu, m.languageModel, () => m.forward(gpu, x));
    await full(); // warm-up: pipelines compiled
    const fullS = Math.min(await seconds(full), await seconds(full));
    const sweep = () => knockoutSweep(gpu, m, x, [flow], { window: WINDOW });
    await sweep();
    const sweepS = await seconds(sweep);
    const naiveS = L * fullS;
    const px = x.pixels!;
    const layers = (c: number) => Array.from({ length: L }, (_, l) => l).filter((l) => l >= c - Math.floor(WINDOW / 2) && l <= c + Math.ceil(WINDOW / 2) - 1);
    const torchS = await seconds(() =>
      runKnockoutReference({
        model: dir,
        pixelValues: px.data,
        pixelShape: [...px.shape] as [number, number, number],
        inputIds: x.ids,
        entries: Array.from({ length: L }, (_, c) => ({ dst: flow.dst, src: flow.src, layers: layers(c) })),
      }),
    );
    const shape = [L, x.ids.length];
    return [
      { case: 'knockout-sweep-vs-naive', shape, dtype: 'f16', unit: 's/item', ours: sweepS, baseline: naiveS, ratio: sweepS / naiveS, note: `llava-deep; ${L} centres × window ${WINDOW}; naive = ${L} × full forward (${fullS.toFixed(2)} s); lower ratio is better, target ≤ 0.6` },
      { case: 'knockout-sweep-vs-pytorch', shape, dtype: 'f16', unit: 's/item', ours: sweepS, baseline: torchS, ratio: sweepS / torchS, note: 'PyTorch wall time includes Python start-up and weight loading; lower ratio is better' },
    ];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
