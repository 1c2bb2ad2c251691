/**
 * The report page of an intervention run (`knockout`, `ablate`, `patch`): every option of
 * the run, the figure(s), and a per-layer table — self-contained, like report.html of
 * `analyze`, with which it shares its stylesheet and figure markup.
 */
import type { Figure } from './figures.ts';
import { esc } from './svg.ts';
import { figureHtml, fmt, pageHead, row } from './html.ts';

export interface InterventionReport {
  /** e.g. "Attention knockout". */
  title: string;
  /** What was done, in one paragraph (definitions, with the paper). */
  method: string;
  /** Run metadata and every option, shown as rows. */
  meta: Record<string, unknown>;
  figures: readonly Figure[];
  /** Column names and rows of the per-layer table. */
  table: { columns: string[]; rows: unknown[][] };
}

export function renderInterventionReport(r: InterventionReport): string {
  const head = `<tr>${r.table.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = r.table.rows.map((cells) => `<tr>${cells.map((c) => `<td>${esc(fmt(c))}</td>`).join('')}</tr>`).join('\n');
  return `${pageHead(`phaselens — ${r.title}`)}<h1>phaselens — ${esc(r.title)}</h1>
<p class="note">${esc(r.method)}</p>
<h2>Run</h2>
<table class="meta">
${Object.entries(r.meta).map(([k, v]) => row(k, v)).join('\n')}
</table>
<h2>Figures</h2>
${r.figures.map(figureHtml).join('\n')}
<h2>Per layer</h2>
<table class="phases">
${head}
${body}
</table>
</body>
</html>
`;
}

