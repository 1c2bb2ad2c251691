/**
 * Hand-written SVG line charts (no chart library): title, axes with "nice" ticks
 * (steps 1, 2, 5 × 10^k), axis titles, light grid, optional mean ± band shading (or a lo…hi band, e.g. quartiles),
 * optional vertical shaded regions with labels (phases), point markers, and a legend
 * below the plot. Output is a standalone, well-formed SVG document that can also be
 * inlined into HTML.
 *
 * Layout (px):   title / subtitle
 *                region label strip (only when regions are given)
 *                plot area  (y tick labels + rotated y title on the left)
 *                x tick labels, x title
 *                legend rows
 * Text widths are estimated (0.6 × font size per character); no font metrics are needed.
 *
 * Elements carry classes for tests and styling: `tick x|y`, `tick-label x|y`, `series`,
 * `point`, `band`, `region`, `region-label`, `marker`, `legend-item`.
 */

export interface LineSeries {
  name: string;
  x: readonly number[];
  /** null = no value (the line is broken there). */
  y: readonly (number | null)[];
  /** Half-width of a shaded band around y (e.g. the std), same length as y. */
  band?: readonly (number | null)[];
  /** A band from lo to hi instead (e.g. the quartiles around a median), same length as y; wins over `band`. */
  range?: { lo: readonly (number | null)[]; hi: readonly (number | null)[] };
  /** Legend text for the band (default "± std"). */
  bandLabel?: string;
  color?: string;
  /** stroke-dasharray, e.g. "6 3". */
  dash?: string;
  /** Draw a dot at every point (default: when the series has ≤ 60 points). */
  dots?: boolean;
}

export interface ShadedRegion {
  x0: number;
  x1: number;
  label: string;
  /** Text drawn above the region when `label` does not fit (default: the label's first word). */
  short?: string;
  color?: string;
}

export interface PointMarker {
  x: number;
  y: number;
  /** Legend text. */
  label: string;
  color?: string;
  /** Error bar half-height (e.g. the std). */
  err?: number | null;
}

export interface LineChartSpec {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  regions?: readonly ShadedRegion[];
  markers?: readonly PointMarker[];
  /** Total width in px (default 760). */
  width?: number;
  /** Height of the plot area in px (default 340). */
  plotHeight?: number;
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
  /** Clamp the automatic y domain to these bounds (e.g. [0, 1] for a share); data outside is clipped. */
  yBounds?: readonly [number, number];
  /** One legend entry per region (default: when there are at most 6 regions). */
  regionLegend?: boolean;
  /** Only integer x ticks (layer indices). Default true. */
  integerX?: boolean;
}

/** Default series colours (colour-blind-safe Okabe–Ito subset). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9'];
/** Region tints, cycled. */
export const REGION_TINTS = ['#F6D8B8', '#CFE3F5', '#D5ECCE', '#EBD5EA', '#F3EDB5', '#DADADA'];

const FONT = "font-family=\"Helvetica, Arial, sans-serif\"";

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Estimated text width in px. */
export function textWidth(s: string, size: number): number {
  return s.length * size * 0.6;
}

/** A "nice" step (1, 2 or 5 × 10^k) giving about `target` intervals over `span`. */
export function niceStep(span: number, target = 6): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, target);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  const m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return m * p;
}

/** Multiples of `step` inside [lo, hi] (with a tolerance for rounding). */
export function ticksFor(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  const eps = step * 1e-9;
  const a = Math.ceil((lo - eps) / step);
  const b = Math.floor((hi + eps) / step);
  for (let i = a; i <= b; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** Tick label with as many decimals as the step needs; never "-0". */
export function formatTick(v: number, step: number): string {
  const d = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const s = v.toFixed(Math.min(d, 10));
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** A y domain that starts and ends on ticks, with at least a little room around the data. */
export function niceDomain(lo: number, hi: number, target = 6): { lo: number; hi: number; step: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { lo: 0, hi: 1, step: 0.2 };
  if (hi - lo < 1e-12) {
    const d = Math.abs(lo) > 1e-12 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const step = niceStep(hi - lo, target);
  return { lo: Math.floor(lo / step + 1e-9) * step, hi: Math.ceil(hi / step - 1e-9) * step, step };
}

function f2(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

const finite = (v: number | null | undefined): v is number => v !== null && v !== undefined && Number.isFinite(v);

/** The band's lower and upper edge at point i (`range`, else y ± |band|); null where it has none. */
function bandAt(s: LineSeries, i: number): [number, number] | null {
  const y = s.y[i];
  if (s.range) return finite(s.range.lo[i]) && finite(s.range.hi[i]) ? [s.range.lo[i]!, s.range.hi[i]!] : null;
  const b = s.band?.[i];
  return finite(y) && finite(b) ? [y - Math.abs(b), y + Math.abs(b)] : null;
}

/** Consecutive runs of points where y (and the band, when asked) is finite. */
function segments(s: LineSeries, needBand: boolean): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  for (let i = 0; i < s.x.length; i++) {
    const ok = finite(s.y[i]) && (!needBand || bandAt(s, i) !== null);
    if (ok) cur.push(i);
    else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length) out.push(cur);
  return out;
}

interface LegendEntry {
  kind: 'line' | 'band' | 'marker' | 'region';
  label: string;
  color: string;
  dash?: string;
}

export function lineChart(spec: LineChartSpec): string {
  const W = spec.width ?? 760;
  const plotH = spec.plotHeight ?? 340;
  const series = spec.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length] }));
  const markers = spec.markers ?? [];
  const regions = spec.regions ?? [];
  const integerX = spec.integerX ?? true;

  // ---- domains
  const xs = series.flatMap((s) => [...s.x]).concat(markers.map((m) => m.x));
  let [x0, x1] = spec.xDomain ?? [Math.min(...xs), Math.max(...xs)];
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  // room for markers drawn at the right edge (e.g. the pre-norm value at l = L)
  if (!spec.xDomain && markers.some((m) => m.x >= x1)) x1 += (x1 - x0) * 0.025;
  const ys: number[] = [];
  for (const s of series)
    s.y.forEach((y, i) => {
      if (!finite(y)) return;
      ys.push(y, ...(bandAt(s, i) ?? []));
    });
  for (const m of markers) {
    if (!Number.isFinite(m.y)) continue;
    const h = m.err !== null && m.err !== undefined && Number.isFinite(m.err) ? Math.abs(m.err) : 0;
    ys.push(m.y - h, m.y + h);
  }
  const yd = spec.yDomain
    ? { lo: spec.yDomain[0], hi: spec.yDomain[1], step: niceStep(spec.yDomain[1] - spec.yDomain[0]) }
    : ys.length
      ? niceDomain(Math.max(Math.min(...ys), spec.yBounds?.[0] ?? -Infinity), Math.min(Math.max(...ys), spec.yBounds?.[1] ?? Infinity))
      : niceDomain(0, 1);
  if (spec.yBounds && !spec.yDomain && (yd.lo < spec.yBounds[0] || yd.hi > spec.yBounds[1])) {
    const c = niceDomain(Math.max(yd.lo, spec.yBounds[0]), Math.min(yd.hi, spec.yBounds[1]));
    yd.lo = Math.max(c.lo, spec.yBounds[0]);
    yd.hi = Math.min(c.hi, spec.yBounds[1]);
    yd.step = c.step;
  }
  const yTicks = ticksFor(yd.lo, yd.hi, yd.step);
  const xStep = Math.max(integerX ? 1 : 0, niceStep(x1 - x0, 10));
  const xTicks = ticksFor(x0, x1, xStep);

  // ---- layout
  const yLabelW = Math.max(...yTicks.map((t) => textWidth(formatTick(t, yd.step), 12)), 10);
  const left = Math.ceil(yLabelW + 44);
  const right = 24;
  // subtitle: split at " · " into lines that fit the width
  const subLines: string[] = [];
  for (const part of spec.subtitle ? spec.subtitle.split(' · ') : []) {
    const last = subLines.length - 1;
    if (last >= 0 && textWidth(`${subLines[last]} · ${part}`, 12) <= W - 20) subLines[last] += ` · ${part}`;
    else subLines.push(part);
  }
  const top = 30 + subLines.length * 16 + (subLines.length ? 2 : 0) + (regions.length ? 24 : 8);
  const plotW = W - left - right;
  const plotTop = top;
  const plotBottom = plotTop + plotH;
  const X = (x: number) => left + ((x - x0) / (x1 - x0)) * plotW;
  const Y = (y: number) => plotBottom - ((y - yd.lo) / (yd.hi - yd.lo)) * plotH;

  // ---- legend entries and rows
  const legend: LegendEntry[] = [];
  for (const s of series) {
    legend.push({ kind: 'line', label: s.name, color: s.color, dash: s.dash });
    if (s.band || s.range) legend.push({ kind: 'band', label: `${s.name} ${s.bandLabel ?? '± std'}`, color: s.color });
  }
  for (const m of markers) legend.push({ kind: 'marker', label: m.label, color: m.color ?? '#333' });
  if (spec.regionLegend ?? regions.length <= 6)
    regions.forEach((r, i) => legend.push({ kind: 'region', label: r.label, color: r.color ?? REGION_TINTS[i % REGION_TINTS.length] }));
  const rows: { e: LegendEntry; x: number }[][] = [[]];
  let cx = left;
  for (const e of legend) {
    const w = 30 + textWidth(e.label, 12) + 18;
    if (cx + w > W - right && rows[rows.length - 1].length) {
      rows.push([]);
      cx = left;
    }
    rows[rows.length - 1].push({ e, x: cx });
    cx += w;
  }
  const legendTop = plotBottom + 52;
  const H = legendTop + (legend.length ? rows.length * 20 : 0) + 8;

  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`);
  o.push(`<title>${esc(spec.title)}</title>`);
  // ids must be unique when several charts are inlined into one HTML page
  const clip = `plot-${hash(spec.title + (spec.subtitle ?? '') + spec.yLabel)}`;
  o.push(`<defs><clipPath id="${clip}"><rect x="${left - 4}" y="${plotTop - 4}" width="${plotW + 8}" height="${plotH + 8}"/></clipPath></defs>`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text class="title" x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`);
  subLines.forEach((line, i) =>
    o.push(`<text class="subtitle" x="${W / 2}" y="${38 + 16 * i}" text-anchor="middle" font-size="12" fill="#555">${esc(line)}</text>`),
  );

  // regions (behind everything)
  regions.forEach((r, i) => {
    const a = X(Math.max(x0, r.x0));
    const b = X(Math.min(x1, r.x1));
    const color = r.color ?? REGION_TINTS[i % REGION_TINTS.length];
    o.push(`<rect class="region" x="${f2(a)}" y="${plotTop}" width="${f2(Math.max(0, b - a))}" height="${plotH}" fill="${color}" fill-opacity="0.55"/>`);
    // the longest of: label, short label, first word, that fits the region; none if nothing fits
    const short = r.short ?? r.label.split(' ')[0];
    const text = [r.label, short, short.split(' ')[0]].find((t) => textWidth(t, 11) + 4 <= b - a);
    if (text) o.push(`<text class="region-label" x="${f2((a + b) / 2)}" y="${plotTop - 7}" text-anchor="middle" font-size="11" fill="#333">${esc(text)}</text>`);
    if (i > 0) o.push(`<line class="region-edge" x1="${f2(a)}" x2="${f2(a)}" y1="${plotTop - 20}" y2="${plotBottom}" stroke="#999" stroke-dasharray="3 3"/>`);
  });

  // grid and axes
  for (const t of yTicks) {
    const y = f2(Y(t));
    o.push(`<line class="grid y" x1="${left}" x2="${left + plotW}" y1="${y}" y2="${y}" stroke="#000" stroke-opacity="0.08"/>`);
    o.push(`<line class="tick y" x1="${left - 5}" x2="${left}" y1="${y}" y2="${y}" stroke="#333"/>`);
    o.push(`<text class="tick-label y" x="${left - 8}" y="${y}" dy="0.35em" text-anchor="end">${esc(formatTick(t, yd.step))}</text>`);
  }
  for (const t of xTicks) {
    const x = f2(X(t));
    o.push(`<line class="tick x" x1="${x}" x2="${x}" y1="${plotBottom}" y2="${plotBottom + 5}" stroke="#333"/>`);
    o.push(`<text class="tick-label x" x="${x}" y="${plotBottom + 18}" text-anchor="middle">${esc(formatTick(t, xStep))}</text>`);
  }
  o.push(`<rect class="frame" x="${left}" y="${plotTop}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  if (yd.lo < 0 && yd.hi > 0) o.push(`<line class="zero" x1="${left}" x2="${left + plotW}" y1="${f2(Y(0))}" y2="${f2(Y(0))}" stroke="#333" stroke-opacity="0.4"/>`);
  o.push(`<text class="axis-title x" x="${left + plotW / 2}" y="${plotBottom + 38}" text-anchor="middle" font-size="13">${esc(spec.xLabel)}</text>`);
  const yt = plotTop + plotH / 2;
  o.push(`<text class="axis-title y" x="16" y="${yt}" text-anchor="middle" font-size="13" transform="rotate(-90 16 ${yt})">${esc(spec.yLabel)}</text>`);

  // bands, then lines and points, clipped to the plot area
  o.push(`<g clip-path="url(#${clip})">`);
  for (const s of series) {
    if (!s.band && !s.range) continue;
    for (const seg of segments(s, true)) {
      const up = seg.map((i) => `${f2(X(s.x[i]))},${f2(Y(bandAt(s, i)![1]))}`);
      const dn = seg.map((i) => `${f2(X(s.x[i]))},${f2(Y(bandAt(s, i)![0]))}`).reverse();
      o.push(`<polygon class="band" points="${[...up, ...dn].join(' ')}" fill="${s.color}" fill-opacity="0.18" stroke="none"/>`);
    }
  }
  for (const s of series) {
    const dots = s.dots ?? s.x.length <= 60;
    o.push(`<g class="series" data-name="${esc(s.name)}">`);
    for (const seg of segments(s, false)) {
      const pts = seg.map((i) => `${f2(X(s.x[i]))},${f2(Y(s.y[i]!))}`).join(' ');
      o.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      if (dots) for (const i of seg) o.push(`<circle class="point" cx="${f2(X(s.x[i]))}" cy="${f2(Y(s.y[i]!))}" r="3" fill="${s.color}"/>`);
    }
    o.push(`</g>`);
  }
  o.push(`</g>`);
  for (const m of markers) {
    if (!Number.isFinite(m.y)) continue;
    const x = X(m.x);
    const y = Y(m.y);
    const c = m.color ?? '#333';
    if (m.err !== null && m.err !== undefined && Number.isFinite(m.err) && m.err > 0) {
      const a = f2(Y(m.y + m.err));
      const b = f2(Y(m.y - m.err));
      o.push(`<path class="marker-err" d="M${f2(x)},${a}V${b}M${f2(x - 4)},${a}H${f2(x + 4)}M${f2(x - 4)},${b}H${f2(x + 4)}" stroke="${c}" fill="none"/>`);
    }
    o.push(`<path class="marker" d="${diamond(x, y, 6)}" fill="#fff" stroke="${c}" stroke-width="2"/>`);
  }

  // legend
  rows.forEach((row, r) => {
    const y = legendTop + r * 20;
    for (const { e, x } of row) {
      o.push(`<g class="legend-item">`);
      if (e.kind === 'line') o.push(`<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${e.color}" stroke-width="2"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`);
      else if (e.kind === 'band') o.push(`<rect x="${x}" y="${y - 6}" width="24" height="12" fill="${e.color}" fill-opacity="0.18"/>`);
      else if (e.kind === 'region') o.push(`<rect x="${x}" y="${y - 6}" width="24" height="12" fill="${e.color}" fill-opacity="0.55" stroke="#999"/>`);
      else o.push(`<path d="${diamond(x + 12, y, 6)}" fill="#fff" stroke="${e.color}" stroke-width="2"/>`);
      o.push(`<text x="${x + 30}" y="${y}" dy="0.35em">${esc(e.label)}</text>`);
      o.push(`</g>`);
    }
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

function diamond(x: number, y: number, r: number): string {
  return `M${f2(x)},${f2(y - r)}L${f2(x + r)},${f2(y)}L${f2(x)},${f2(y + r)}L${f2(x - r)},${f2(y)}Z`;
}
