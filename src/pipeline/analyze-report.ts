/**
 * What `analyze` shows after the per-image loop, as data: the aggregate of the per-image
 * results, its figures and the report's input. No file access, so the CLI (which writes
 * it to OUT/, analyze.ts) and the page (which shows it and offers it for download,
 * src/web/) build the same thing.
 */
import type { Gpu } from '../gpu/context.ts';
import { aggregate, type Aggregate, type ImageMetrics } from '../analysis/aggregate.ts';
import { buildFigures } from '../report/figures.ts';
import type { ReportInput } from '../report/html.ts';
import { describePrecision } from '../ops/precision.ts';
import { VERSION } from '../version.ts';

export interface AnalyzeRunInfo {
  dataset: string;
  adapter?: string;
  options?: Record<string, unknown>;
}

/** The model, family and dtypes are read from the results themselves (one run's, or merged shards'). */
export function analyzeReport(
  results: readonly ImageMetrics[],
  errors: { image: string; error: string }[],
  smooth: number,
  run: AnalyzeRunInfo,
): { aggregate: Aggregate; report: ReportInput } {
  const agg = aggregate(results, { phaseWindow: smooth });
  const first = results[0];
  const dtypes = (first?.options.weight_dtypes as string[] | undefined) ?? [];
  return {
    aggregate: agg,
    report: {
      meta: {
        model: first?.model ?? '—',
        family: first?.model_family,
        visual_tokens: first?.tokens.visual,
        dataset: run.dataset,
        dtype: `weights ${dtypes.join('/')}; ${describePrecision(first?.options.precision)}`,
        adapter: run.adapter,
        n_images: results.length,
        errors,
        phaselens_version: VERSION,
        options: { ...(agg.options ?? {}), ...(run.options ?? {}) },
      },
      aggregate: agg,
      perImageSample: first ?? null,
      figures: buildFigures(agg),
    },
  };
}

/** How a report names the adapter and its optional features. */
export function adapterLine(gpu: Pick<Gpu, 'adapterName' | 'adapterClass' | 'kernels' | 'kernelsForced' | 'features'>): string {
  const kernels = `${gpu.kernels} kernels${gpu.kernelsForced ? ' (forced)' : ''}`;
  return `${gpu.adapterName} (${gpu.adapterClass.adapterClass}, ${kernels}; shader-f16 ${gpu.features.f16}, timestamp-query ${gpu.features.timestamps}, subgroups ${gpu.features.subgroups})`;
}
