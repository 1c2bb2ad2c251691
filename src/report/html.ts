/**
 * The self-contained HTML report, OUT/report.html: one file with the SVG figures inlined,
 * the PNGs as base64 data URIs, the run's metadata, a table of phase boundaries and a
 * caption under every figure saying exactly what is plotted. No scripts, no external
 * resources. writeReport also writes every figure to OUT/figures/.
 */
import type { Aggregate, ImageMetrics } from '../analysis/aggregate.ts';
import { lensCoverageText, phaseSpans, type Figure } from './figures.ts';
import { esc } from './svg.ts';

export interface ReportMeta {
  model: string;
  /** The family's model_type (models/registry.ts). Default: the aggregate's. */
  family?: string;
  /** Where the visual tokens sit, in words. Default: the aggregate's. */
  visual_tokens?: string;
  /** e.g. "coco:…/captions_val2017.json:…/val2017". */
  dataset?: string;
  dtype?: string;
  /** GPU adapter name and features. */
  adapter?: string;
  /** Images with results. Default: the aggregate's n_images. */
  n_images?: number;
  /** Images that failed, with the reason. */
  errors?: readonly { image: string; error: string }[];
  phaselens_version?: string;
  /** ISO date; default: now. */
  date?: string;
  /** Run options (drop_bos, query, k, prompt, limit, seed, …). Default: the aggregate's. */
  options?: Record<string, unknown>;
  /** Default: the HF output_hidden_states convention used by phaselens. */
  hidden_state_convention?: string;
  /** Anything else worth showing (command line, elapsed time, …). */
  extra?: Record<string, unknown>;
}

export interface ReportInput {
  meta: ReportMeta;
  aggregate: Aggregate;
  /** One image's metrics, for the token-layout table. */
  perImageSample?: ImageMetrics | null;
  figures: readonly Figure[];
}

/** The stylesheet every phaselens report page shares. */
/** A report page's opening, up to and including <body>. */
export function pageHead(title: string, css = '', meta = ''): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
${meta}<title>${esc(title)}</title>
<style>
${REPORT_CSS}${css}</style>
</head>
<body>
`;
}

export const REPORT_CSS = `body { font-family: Helvetica, Arial, sans-serif; max-width: 1000px; margin: 24px auto; padding: 0 16px; color: #222; line-height: 1.4; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
table.meta th { color: #555; font-weight: normal; white-space: nowrap; }
table.phases th, table.phases td { border-bottom: 1px solid #eee; padding-right: 18px; }
figure { margin: 24px 0; }
figure svg, figure img { max-width: 100%; height: auto; display: block; border: 1px solid #eee; }
figure img { image-rendering: pixelated; }
figcaption { font-size: 13px; color: #333; margin-top: 6px; }
.file, .note { color: #777; font-size: 12px; }
code { font-size: 12px; }
`;

export const DEFAULT_HIDDEN_STATE_CONVENTION =
  'hidden_states index l = 0..L as HF output_hidden_states: 0 = input embeddings (image features spliced in), l = output of decoder layer l, L = after the final norm; last_layer_prenorm = layer L before the final norm';

export function fmt(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

export function row(k: string, v: unknown): string {
  return `<tr><th>${esc(k)}</th><td>${esc(fmt(v))}</td></tr>`;
}

/** Base64 with btoa, which Node and browsers both have (Buffer is Node's alone: the page renders figures too). */
function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Strip the XML prolog (if any) so an SVG document can be inlined. */
function inlineSvg(svg: string): string {
  return svg.replace(/^<\?xml[^>]*>\s*/, '');
}

export function figureHtml(f: Figure): string {
  const body =
    f.kind === 'svg'
      ? inlineSvg(f.data as string)
      : `<img alt="${esc(f.title)}" src="data:image/png;base64,${base64(f.data as Uint8Array)}">`;
  return `<figure id="${esc(f.id)}" data-file="figures/${esc(f.file)}">\n${body}\n<figcaption><b>${esc(f.title)}.</b> ${esc(f.caption)} <span class="file">(figures/${esc(f.file)})</span></figcaption>\n</figure>`;
}

/** The lens coverage row: the paper's full lens, or what a restricted run covered (src/analysis/lens-spec.ts). */
function lensCoverage(a: Aggregate): string | undefined {
  const c = a.logit_lens;
  if (!c) return undefined;
  if (c.n_positions === 0) return 'none (LogitLens not run: --lens-layers or --lens-positions none)';
  if (c.full && c.same) return `full: every hidden-state index 0..${a.layers.length - 1} and all ${c.n_visual} visual tokens`;
  return lensCoverageText(a);
}

export function renderReport(input: ReportInput): string {
  const { meta, aggregate: a, perImageSample: s, figures } = input;
  const options = meta.options ?? (a.options as Record<string, unknown> | null) ?? {};
  const date = meta.date ?? new Date().toISOString();
  const errors = meta.errors ?? [];
  const L = a.layers.length - 1;

  const metaRows = [
    row('model', meta.model),
    row('model family', meta.family ?? a.model_family),
    row('visual tokens', meta.visual_tokens ?? a.visual_tokens),
    row('data set', meta.dataset),
    row('images with results', meta.n_images ?? a.n_images),
    row('errors', errors.length),
    row('dtype', meta.dtype ?? options.dtype),
    row('drop_bos', options.drop_bos ?? false),
    row('query token', options.query ?? 'last'),
    row('LogitLens top-k', options.k),
    row('LogitLens coverage', lensCoverage(a)),
    row('layers L', L),
    row('hidden-state convention', meta.hidden_state_convention ?? DEFAULT_HIDDEN_STATE_CONVENTION),
    row('adapter', meta.adapter),
    row('phaselens version', meta.phaselens_version ?? a.phaselens_version),
    row('date', date),
  ];
  for (const [k, v] of Object.entries(options)) if (!['dtype', 'drop_bos', 'query', 'k', 'lens_layers', 'lens_positions'].includes(k)) metaRows.push(row(`option ${k}`, v));
  for (const [k, v] of Object.entries(meta.extra ?? {})) metaRows.push(row(k, v));

  const inter = a.inter.map((v) => v.mean);
  const spans = phaseSpans(a.phases, inter);
  const phaseTable = spans.length
    ? `<table class="phases"><thead><tr><th>phase</th><th>direction</th><th>layers</th><th>s(start)</th><th>s(end)</th></tr></thead><tbody>\n${spans
        .map(
          (p) =>
            `<tr><td>${esc(p.label)}</td><td>${p.direction}</td><td>${p.x0}–${p.x1}</td><td>${esc(fmt(inter[p.x0]))}</td><td>${esc(fmt(inter[p.x1]))}</td></tr>`,
        )
        .join('\n')}\n</tbody></table>\n<p class="note">Boundaries (turning-point layers): ${esc(JSON.stringify(a.phases?.boundaries ?? []))}${
        a.phases && a.phases.window > 1 ? `; moving-average window ${a.phases.window}` : ''
      }. Runs share their boundary layer. Segmentation of the mean inter-modal curve into maximal monotone runs; the paper's four phases are rise, fall, rise, fall.</p>`
    : '<p>No phases: the inter-modal curve is missing or flat.</p>';

  const sample = s
    ? `<h2>Token layout (sample image)</h2><table class="meta">${[
        row('image', s.image),
        row('sequence length', s.tokens.seq),
        row('visual tokens', `[${s.tokens.image[0]}, ${s.tokens.image[1]}) — ${s.tokens.image[1] - s.tokens.image[0]} tokens${s.tokens.visual ? `: ${s.tokens.visual}` : ''}`),
        row('text tokens', `${s.tokens.text.length} (${s.tokens.text.length <= 24 ? s.tokens.text.join(', ') : s.tokens.text.slice(0, 12).join(', ') + ', …, ' + s.tokens.text.slice(-6).join(', ')})`),
        row('norm-attention query', s.norm_attention?.query),
        row('phases of this image', s.phases ? `${JSON.stringify(s.phases.boundaries)} ${JSON.stringify(s.phases.labels)}` : undefined),
      ].join('\n')}</table>`
    : '';

  const errorList = errors.length
    ? `<h2>Errors (${errors.length})</h2><ul class="errors">${errors.map((e) => `<li><code>${esc(e.image)}</code>: ${esc(e.error)}</li>`).join('\n')}</ul>`
    : '';

  return `${pageHead(`phaselens report — ${meta.model}`, '', `<meta name="generator" content="phaselens ${esc(meta.phaselens_version ?? a.phaselens_version ?? '')}">\n`)}<h1>phaselens report</h1>
<p class="note">${esc(meta.model)} · ${esc(fmt(meta.n_images ?? a.n_images))} images · ${esc(date)}</p>
<h2>Run</h2>
<table class="meta">
${metaRows.join('\n')}
</table>
${errorList}
<h2>Phases of the inter-modal curve</h2>
${phaseTable}
<h2>Figures</h2>
${figures.map(figureHtml).join('\n')}
${sample}
<p class="note">Per-layer numbers: aggregate.json and aggregate.csv (mean, sample std with divisor n − 1, n per layer); per-image metrics: images/*.json.</p>
</body>
</html>
`;
}

