/**
 * A report page that puts several runs next to each other (`gate-report`): one column per
 * run in the metadata table, then sections of figures — side by side when each run has its
 * own panel — and tables. Self-contained like report.html of `analyze` (the same stylesheet
 * and figure markup, SVGs inlined), no scripts.
 */
import type { Figure } from './figures.ts';
import { figureHtml, fmt, pageHead } from './html.ts';
import { esc } from './svg.ts';

export interface SideBySideSection {
  title: string;
  /** What the section shows, in one paragraph. */
  note?: string;
  figures?: readonly Figure[];
  /** Figures in a row (one panel per run) instead of one under the other. */
  side?: boolean;
  table?: { columns: string[]; rows: unknown[][] };
}

export interface SideBySideReport {
  title: string;
  method: string;
  /** Per run: its name (the column head) and metadata rows. */
  runs: { name: string; meta: Record<string, unknown> }[];
  sections: readonly SideBySideSection[];
  /** A closing note (e.g. where the numbers are). */
  footer?: string;
}

const SIDE_CSS = `.side { display: flex; gap: 12px; align-items: flex-start; }
.side figure { flex: 1 1 0; min-width: 0; margin: 12px 0; }
table.runs td, table.runs th { border-bottom: 1px solid #eee; padding-right: 18px; }
`;

function table(columns: readonly string[], rows: readonly (readonly unknown[])[], cls: string): string {
  const head = `<tr>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = rows.map((cells) => `<tr>${cells.map((c) => `<td>${esc(fmt(c))}</td>`).join('')}</tr>`).join('\n');
  return `<table class="${cls}">\n${head}\n${body}\n</table>`;
}

function section(s: SideBySideSection): string {
  const figs = s.figures ?? [];
  const body = [
    s.note ? `<p class="note">${esc(s.note)}</p>` : '',
    figs.length ? (s.side ? `<div class="side">\n${figs.map(figureHtml).join('\n')}\n</div>` : figs.map(figureHtml).join('\n')) : '',
    s.table ? table(s.table.columns, s.table.rows, 'phases') : '',
  ];
  return `<h2>${esc(s.title)}</h2>\n${body.filter(Boolean).join('\n')}`;
}

export function renderSideBySide(r: SideBySideReport): string {
  // the union of the runs' metadata keys, in first-seen order; a run without one shows —
  const keys = [...new Set(r.runs.flatMap((x) => Object.keys(x.meta)))];
  const meta = table(['', ...r.runs.map((x) => x.name)], keys.map((k) => [k, ...r.runs.map((x) => x.meta[k])]), 'meta runs');
  return `${pageHead(`phaselens — ${r.title}`, SIDE_CSS)}<h1>phaselens — ${esc(r.title)}</h1>
<p class="note">${esc(r.method)}</p>
<h2>Runs</h2>
${meta}
${r.sections.map(section).join('\n')}
${r.footer ? `<p class="note">${esc(r.footer)}</p>` : ''}
</body>
</html>
`;
}
