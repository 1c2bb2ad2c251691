/**
 * `analyze` as a library call: sample the data set, run every image through the
 * instrumented forward (resumable, one JSON per image), then aggregate, draw the figures
 * and write the self-contained report.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { formatDataSpec, loadData, parseDataSpec, sampleItems, type DataItem, type DataSpec } from '../data/index.ts';
import type { Vlm } from '../models/vlm.ts';
import { buildFigures } from '../report/figures.ts';
import { writeReport } from '../report/html.ts';
import { VERSION } from '../version.ts';
import { aggregate, writeAggregate, type ImageMetrics } from './aggregate.ts';
import { analyzeImage, type AnalyzeOptions } from './analyze-image.ts';
import { readErrors, readResult, runItems, type RunSummary } from './runner.ts';

export interface AnalyzeRun extends AnalyzeOptions {
  data: string;
  out: string;
  limit?: number;
  seed?: number;
}

export interface AnalyzeOutcome {
  summary: RunSummary;
  report: string;
  items: DataItem[];
}

/** The data set's items after `--limit/--seed` (cheap: callers run it before loading weights). */
export function selectItems(o: Pick<AnalyzeRun, 'data' | 'limit' | 'seed'>): { spec: DataSpec; items: DataItem[] } {
  const spec = parseDataSpec(o.data);
  return { spec, items: sampleItems(loadData(spec), o.limit, o.seed) };
}

export async function analyze(gpu: Gpu, m: Vlm, o: AnalyzeRun, selection = selectItems(o)): Promise<AnalyzeOutcome> {
  const { spec, items } = selection;
  const summary = await runItems(items, o.out, (item) => analyzeImage(gpu, m, item, o), { progress: { label: 'analyze', unit: 'img' } });
  const results = items.map((i) => readResult(o.out, i.id)).filter((r): r is object => r !== null) as ImageMetrics[];
  const agg = aggregate(results, { phaseWindow: o.smooth });
  writeAggregate(o.out, agg);
  const figures = buildFigures(agg);
  const errors = readErrors(o.out)
    .filter((e) => items.some((i) => i.id === e.id))
    .map((e) => ({ image: e.image ?? e.id, error: e.message }));
  const report = writeReport(o.out, {
    meta: {
      model: m.name,
      family: m.family,
      visual_tokens: m.visualTokens,
      dataset: formatDataSpec(spec),
      dtype: `weights ${m.weightDtypes.join('/')}; activations and accumulation f32`,
      adapter: `${gpu.adapterName} (shader-f16 ${gpu.features.f16}, timestamp-query ${gpu.features.timestamps}, subgroups ${gpu.features.subgroups})`,
      n_images: results.length,
      errors,
      phaselens_version: VERSION,
      options: { ...(agg.options ?? {}), limit: o.limit ?? null, seed: o.seed ?? null },
    },
    aggregate: agg,
    perImageSample: results[0] ?? null,
    figures,
  });
  return { summary, report, items };
}

/** Result files present in OUT/images (for messages). */
export function countResults(out: string): number {
  try {
    return readdirSync(join(out, 'images')).filter((f) => f.endsWith('.json')).length;
  } catch {
    return 0;
  }
}
