/**
 * The run's outputs as download links, with the file names and bytes the CLI writes:
 * `<id>.json` per image (OUT/images/), aggregate.json, aggregate.csv, report.html and,
 * when items failed, errors.json.
 */
import { aggregateCsv, aggregateJson, type Aggregate } from '../analysis/aggregate.ts';
import { renderReport, type ReportInput } from '../report/html.ts';
import type { ItemFailure, ItemResult } from './session.ts';

export interface Download {
  file: string;
  text: string;
  type: string;
}

export function runDownloads(results: readonly ItemResult[], failures: readonly ItemFailure[], agg: Aggregate, report: ReportInput): Download[] {
  const json = 'application/json';
  return [
    { file: 'aggregate.json', text: aggregateJson(agg), type: json },
    { file: 'aggregate.csv', text: aggregateCsv(agg), type: 'text/csv' },
    { file: 'report.html', text: renderReport(report), type: 'text/html' },
    ...(failures.length ? [{ file: 'errors.json', text: JSON.stringify({ errors: failures }, null, 1) + '\n', type: json }] : []),
    // as the runner writes OUT/images/<id>.json
    ...results.map((r) => ({ file: `${r.item.id}.json`, text: JSON.stringify(r.metrics) + '\n', type: json })),
  ];
}

/** Replaces `into`'s children with one link per download; earlier links' object URLs are revoked. */
export function showDownloads(into: HTMLElement, downloads: readonly Download[]): void {
  into.querySelectorAll('a').forEach((a) => URL.revokeObjectURL(a.href));
  into.replaceChildren(
    ...downloads.map((d) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([d.text], { type: d.type }));
      a.download = d.file;
      a.textContent = d.file;
      a.dataset.file = d.file;
      return a;
    }),
  );
}
