/**
 * `analyze` as a library call: sample the data set, run every image through the
 * instrumented forward (resumable, one JSON per image), then aggregate, draw the figures
 * and write the self-contained report. The aggregate is of the results on disk when the
 * loop has ended; the report lists the items it leaves out.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { formatDataSpec, loadData, parseDataSpec, sampleItems, type DataItem, type DataSpec } from '../data/index.ts';
import { shardItems, type Shard } from '../data/shard.ts';
import type { Vlm } from '../models/vlm.ts';
import { writeAggregate, writeReport } from './outputs.ts';
import type { ImageMetrics } from '../analysis/aggregate.ts';
import { adapterLine, analyzeReport, type AnalyzeRunInfo } from './analyze-report.ts';
import { analyzeImage, type AnalyzeOptions } from '../analysis/analyze-image.ts';
import { coverageOf } from '../analysis/lens-spec.ts';
import { readImageFile } from '../io/load-node.ts';
import { readErrors, readResult, runItems, type RunSummary } from './runner.ts';

export interface AnalyzeRun extends AnalyzeOptions {
  data: string;
  out: string;
  limit?: number;
  seed?: number;
  /** This process's part of the items (src/data/shard.ts). */
  shard?: Shard | null;
}

export interface AnalyzeOutcome {
  summary: RunSummary;
  report: string;
  items: DataItem[];
}

/** The data set's items after `--limit/--seed` (cheap: callers run it before loading weights). */
export function selectItems(o: Pick<AnalyzeRun, 'data' | 'limit' | 'seed' | 'shard'>): { spec: DataSpec; items: DataItem[] } {
  const spec = parseDataSpec(o.data);
  return { spec, items: shardItems(sampleItems(loadData(spec), o.limit, o.seed), o.shard ?? null) };
}

export async function analyze(gpu: Gpu, m: Vlm, o: AnalyzeRun, selection = selectItems(o)): Promise<AnalyzeOutcome> {
  const { spec, items } = selection;
  const summary = await runItems(items, o.out, (item) => analyzeImage(gpu, m, item, readImageFile(item.image), o), { progress: { label: 'analyze', unit: 'img' } });
  const results = items.map((i) => readResult(o.out, i.id)).filter((r): r is object => r !== null) as ImageMetrics[];
  // a resumed folder keeps its finished results as they were made (as for any other option); say so when their lens coverage differs
  const covers = new Set(results.map((r) => JSON.stringify(coverageOf(r))));
  if (covers.size > 1) console.error(`phaselens: the results in ${o.out} were made with different LogitLens coverage (--lens-layers / --lens-positions; finished images are not redone): the aggregate and report say so, and recall's n per layer counts the images that covered it`);
  // the report lists what it leaves out: recorded failures, and items still without a result (runner.ts's end check)
  const image = new Map(items.map((i) => [i.id, i.image]));
  const errors = [
    ...readErrors(o.out).filter((e) => image.has(e.id)).map((e) => ({ image: e.image ?? e.id, error: e.message })),
    ...summary.missing.map((m) => ({ image: image.get(m.id) ?? m.id, error: `no result: ${m.why}` })),
  ];
  const report = finishAnalyze(o.out, results, errors, o.smooth, {
    dataset: formatDataSpec(spec),
    adapter: adapterLine(gpu),
    options: { limit: o.limit ?? null, seed: o.seed ?? null, shard: o.shard ? `${o.shard.index}/${o.shard.count}` : null },
  });
  return { summary, report, items };
}

/**
 * Aggregate, figures and report of per-image results (one run's, or several shards'
 * merged), written to `out`.
 */
export function finishAnalyze(
  out: string,
  results: readonly ImageMetrics[],
  errors: { image: string; error: string }[],
  smooth: number,
  run: AnalyzeRunInfo,
): string {
  const { aggregate, report } = analyzeReport(results, errors, smooth, run);
  writeAggregate(out, aggregate);
  return writeReport(out, report);
}

/** Result files present in OUT/images (for messages). */
export function countResults(out: string): number {
  try {
    return readdirSync(join(out, 'images')).filter((f) => f.endsWith('.json')).length;
  } catch {
    return 0;
  }
}
