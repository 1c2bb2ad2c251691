/**
 * Writing a run's outputs to disk: the aggregate, the figures and the report pages that
 * src/analysis and src/report build as data and strings (those rooms never touch files,
 * so the browser page renders the same), each written whole or not at all.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempPath } from './locks.ts';
import { VERSION } from '../version.ts';
import { describePrecision } from '../ops/precision.ts';
import { aggregateCsv, aggregateJson, type Aggregate } from '../analysis/aggregate.ts';
import type { Figure } from '../report/figures.ts';
import { renderReport, type ReportInput } from '../report/html.ts';
import { renderInterventionReport, type InterventionReport } from '../report/intervention-html.ts';

/** A temporary file (named after its writer, so a killed run's is cleared: locks.ts), then a rename. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tempPath(path);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** The head every intervention aggregate starts with, taken from its first item's result. */
export function aggregateHead(results: readonly { model: string; model_family: string; options: Record<string, unknown> }[]) {
  const first = results[0];
  return { phaselens_version: VERSION, model: first?.model ?? '—', model_family: first?.model_family ?? '—', n_items: results.length, options: first?.options ?? {} };
}

/** OUT/aggregate.json and OUT/aggregate.csv of `analyze`. */
export function writeAggregate(outDir: string, a: Aggregate): { json: string; csv: string } {
  mkdirSync(outDir, { recursive: true });
  const json = join(outDir, 'aggregate.json');
  const csv = join(outDir, 'aggregate.csv');
  writeFileAtomicSync(json, aggregateJson(a));
  writeFileAtomicSync(csv, aggregateCsv(a));
  return { json, csv };
}

/** Each figure to OUT/figures/<file>; returns the paths. */
export function writeFigures(outDir: string, figures: readonly Figure[]): string[] {
  const dir = join(outDir, 'figures');
  mkdirSync(dir, { recursive: true });
  return figures.map((f) => {
    const path = join(dir, f.file);
    writeFileAtomicSync(path, f.data);
    return path;
  });
}

/** OUT/report.html of `analyze` and every figure under OUT/figures/; returns the report's path. */
export function writeReport(outDir: string, input: ReportInput): string {
  mkdirSync(outDir, { recursive: true });
  writeFigures(outDir, input.figures);
  const path = join(outDir, 'report.html');
  writeFileAtomicSync(path, renderReport(input));
  return path;
}

/** How an intervention run went, as its report's metadata lists it (one run's, or merged shards'). */
export interface RunStatus {
  data: string;
  failed: number;
  missing?: number;
}

/** The metadata lines every intervention report opens with (the precision from the results' options). */
export function runMeta(agg: { model: string; model_family: string; n_items: number; options?: Record<string, unknown> }, run: RunStatus): Record<string, unknown> {
  return {
    model: agg.model,
    family: agg.model_family,
    compute: describePrecision(agg.options?.precision),
    data: run.data,
    items: agg.n_items,
    failed: run.failed,
    ...(run.missing ? { 'missing (no result yet)': run.missing } : {}),
  };
}

/** OUT/report.html of an intervention run and its figures; returns the report's path. */
export function writeInterventionReport(outDir: string, r: InterventionReport): string {
  mkdirSync(outDir, { recursive: true });
  writeFigures(outDir, r.figures);
  const path = join(outDir, 'report.html');
  writeFileAtomicSync(path, renderInterventionReport(r));
  return path;
}
