/**
 * PNG heatmaps (encoded with `fast-png`), with their own labels drawn in a built-in
 * 5×7 bitmap font (upper case, digits, a little punctuation) so the file reads on its own.
 *
 * Layout:   title
 *           span band (coloured strip over the marked columns, e.g. the image tokens, with its label)
 *           [row tick labels] [heatmap cells: rows × columns] [colour bar with max / mid / min labels]
 *           column tick labels, column title
 * Row 0 is at the top. Colour map: viridis (control points below), linear or log10 scale;
 * non-finite values are drawn grey, masked columns (maskFrom) light grey.
 */
import { encode } from 'fast-png';

export type Rgb = readonly [number, number, number];

/** viridis (matplotlib) sampled at t = 0, 0.1, …, 1. */
const VIRIDIS: readonly Rgb[] = [
  [0x44, 0x01, 0x54],
  [0x48, 0x24, 0x75],
  [0x41, 0x44, 0x87],
  [0x35, 0x5f, 0x8d],
  [0x2a, 0x78, 0x8e],
  [0x21, 0x91, 0x8c],
  [0x22, 0xa8, 0x84],
  [0x44, 0xbf, 0x70],
  [0x7a, 0xd1, 0x51],
  [0xbd, 0xdf, 0x26],
  [0xfd, 0xe7, 0x25],
];

/** viridis colour at t ∈ [0, 1] (clamped), linear between control points. */
export function viridis(t: number): Rgb {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const f = u - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

// ---------------------------------------------------------------- 5×7 bitmap font
// Each glyph: 7 rows of 5 columns, '#' = ink.
const GLYPHS: Record<string, string> = {
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... .##.. ..#.. .#...',
  '-': '..... ..... ..... .###. ..... ..... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  '_': '..... ..... ..... ..... ..... ..... #####',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
};

/** Characters the bitmap font can draw (after upper-casing). */
export const FONT_CHARS = Object.keys(GLYPHS).join('');

/** A plain RGB raster. */
export class Raster {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.data = new Uint8Array(width * height * 3);
    this.fill(0, 0, width, height, background);
  }
  set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
  }
  get(x: number, y: number): Rgb {
    const i = (y * this.width + x) * 3;
    return [this.data[i], this.data[i + 1], this.data[i + 2]];
  }
  fill(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++)
      for (let xx = Math.max(0, x); xx < Math.min(this.width, x + w); xx++) this.set(xx, yy, c);
  }
  /** 1-px rectangle outline. */
  outline(x: number, y: number, w: number, h: number, c: Rgb): void {
    this.fill(x, y, w, 1, c);
    this.fill(x, y + h - 1, w, 1, c);
    this.fill(x, y, 1, h, c);
    this.fill(x + w - 1, y, 1, h, c);
  }
  /** Text in the 5×7 font, upper-cased, `scale` px per font pixel; returns the width drawn. */
  text(x: number, y: number, s: string, c: Rgb, scale = 2): number {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = GLYPHS[ch] ?? GLYPHS['?'];
      const rows = g.split(' ');
      for (let r = 0; r < 7; r++)
        for (let k = 0; k < 5; k++) if (rows[r][k] === '#') this.fill(cx + k * scale, y + r * scale, scale, scale, c);
      cx += 6 * scale;
    }
    return cx - x - scale;
  }
  png(): Uint8Array {
    return encode({ width: this.width, height: this.height, data: this.data, depth: 8, channels: 3 });
  }
}

/** Width in px of `s` drawn by Raster.text at `scale`. */
export function bitmapTextWidth(s: string, scale = 2): number {
  return s.length === 0 ? 0 : s.length * 6 * scale - scale;
}

export interface HeatmapSpec {
  /** values[row][col]; rows may not be ragged. */
  values: readonly (readonly number[])[];
  title?: string;
  rowTitle?: string;
  colTitle?: string;
  /** Columns [start, end) to mark with a coloured band above the heatmap. */
  span?: { start: number; end: number; label: string };
  scale?: 'linear' | 'log';
  /** Columns ≥ this index are drawn light grey (e.g. keys after the query: causally masked). */
  maskFrom?: number;
  /** Colour-bar end points; default: min and max of the finite values (log: of the positive ones). */
  range?: readonly [number, number];
  /** Target heatmap size in px (cells are integer-sized; default 800 × 420). */
  targetWidth?: number;
  targetHeight?: number;
}

export interface HeatmapLayout {
  width: number;
  height: number;
  cellW: number;
  cellH: number;
  /** The heatmap cells area. */
  plot: { x: number; y: number; w: number; h: number };
  colorbar: { x: number; y: number; w: number; h: number };
  band: { x: number; y: number; w: number; h: number } | null;
}

export interface Heatmap {
  png: Uint8Array;
  layout: HeatmapLayout;
  /** Values at the colour-bar ends (the data values, even on a log scale). */
  min: number;
  max: number;
}

/** Compact number for labels: 3 significant digits, exponent form when small or large. */
export function shortNumber(v: number): string {
  if (!Number.isFinite(v)) return '?';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(3)));
  return v.toExponential(2).replace('e+', 'E').replace('e', 'E');
}

function tickStep(n: number, target: number): number {
  const raw = n / target;
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
  const f = raw / p;
  return Math.max(1, (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p);
}

const INK: Rgb = [30, 30, 30];
const GREY: Rgb = [150, 150, 150];
const MASKED: Rgb = [225, 225, 225];
const SPAN: Rgb = [230, 97, 1];

export function heatmapPng(spec: HeatmapSpec): Heatmap {
  const rows = spec.values.length;
  const cols = rows ? spec.values[0].length : 0;
  if (rows === 0 || cols === 0) throw new Error(`heatmapPng: empty values (${rows} × ${cols})`);
  for (const r of spec.values) if (r.length !== cols) throw new Error(`heatmapPng: ragged rows (${r.length} vs ${cols})`);
  const log = spec.scale === 'log';
  const finite = spec.values.flatMap((r) => r.filter((v, c) => Number.isFinite(v) && (!log || v > 0) && !(spec.maskFrom !== undefined && c >= spec.maskFrom)));
  let [min, max] = spec.range ?? (finite.length ? [Math.min(...finite), Math.max(...finite)] : [0, 1]);
  if (log && !(min > 0)) min = finite.length ? Math.min(...finite) : 1e-6;
  if (!(max > min)) max = min + (min === 0 ? 1 : Math.abs(min) * 1e-6);
  const t = (v: number) => (log ? (Math.log10(v) - Math.log10(min)) / (Math.log10(max) - Math.log10(min)) : (v - min) / (max - min));

  const S = 2; // font scale
  const lineH = 7 * S;
  const cellW = Math.max(1, Math.floor((spec.targetWidth ?? 800) / cols));
  // at least room for the colour bar's min and max labels
  const cellH = Math.max(2, Math.ceil((2 * lineH + 8) / rows), Math.min(40, Math.floor((spec.targetHeight ?? 420) / rows)));
  const plotW = cols * cellW;
  const plotH = rows * cellH;

  const rowStep = tickStep(rows, Math.max(2, Math.floor(plotH / (lineH + 8))));
  const rowTicks = Array.from({ length: rows }, (_, r) => r).filter((r) => r % rowStep === 0);
  const rowLabelW = Math.max(...rowTicks.map((r) => bitmapTextWidth(String(r), S)), bitmapTextWidth(spec.rowTitle ?? '', S) - 10);
  const colStep = tickStep(cols, Math.max(2, Math.floor(plotW / (bitmapTextWidth(String(cols), S) + 24))));
  const colTicks = Array.from({ length: cols }, (_, c) => c).filter((c) => c % colStep === 0);

  const pad = 12;
  const left = pad + rowLabelW + 10;
  let y = pad;
  const titleY = y;
  if (spec.title) y += lineH + 10;
  const rowTitleY = y;
  if (spec.rowTitle) y += lineH + 6;
  const bandY = y;
  const bandH = spec.span ? lineH + 8 : 0;
  if (spec.span) y += bandH + 3;
  const plotY = y;
  const cbLabels = [shortNumber(max), shortNumber(log ? Math.sqrt(min * max) : (min + max) / 2), shortNumber(min)];
  const cbX = left + plotW + 18;
  const cbW = 16;
  const labelW = Math.max(...cbLabels.map((s) => bitmapTextWidth(s, S)), 0);
  const width = Math.max(cbX + cbW + 8 + labelW + pad, left + bitmapTextWidth(spec.title ?? '', S) + pad, left + bitmapTextWidth(spec.colTitle ?? '', S) + pad);
  const height = plotY + plotH + 8 + lineH + 10 + (spec.colTitle ? lineH + 6 : 0) + pad;

  const img = new Raster(width, height);
  if (spec.title) img.text(left, titleY, spec.title, INK, S);
  if (spec.rowTitle) img.text(pad, rowTitleY, spec.rowTitle, INK, S);

  // cells
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const v = spec.values[r][c];
      if (spec.maskFrom !== undefined && c >= spec.maskFrom) {
        img.fill(left + c * cellW, plotY + r * cellH, cellW, cellH, MASKED);
        continue;
      }
      const col = Number.isFinite(v) && (!log || v > 0) ? viridis(t(v)) : log && v === 0 ? viridis(0) : GREY;
      img.fill(left + c * cellW, plotY + r * cellH, cellW, cellH, col);
    }
  img.outline(left - 1, plotY - 1, plotW + 2, plotH + 2, INK);

  // span band
  let band: HeatmapLayout['band'] = null;
  if (spec.span) {
    const s0 = Math.max(0, Math.min(cols, spec.span.start));
    const s1 = Math.max(s0, Math.min(cols, spec.span.end));
    band = { x: left + s0 * cellW, y: bandY, w: (s1 - s0) * cellW, h: bandH };
    img.fill(band.x, band.y, band.w, band.h, SPAN);
    const lw = bitmapTextWidth(spec.span.label, S);
    if (lw + 8 <= band.w) img.text(band.x + Math.floor((band.w - lw) / 2), band.y + 4, spec.span.label, [255, 255, 255], S);
    else {
      // label outside the band, to its right (or left when no room)
      const x = band.x + band.w + 6 + lw <= left + plotW ? band.x + band.w + 6 : Math.max(left, band.x - 6 - lw);
      img.text(x, band.y + 4, spec.span.label, SPAN, S);
    }
    // edge ticks joining the band to the heatmap
    img.fill(band.x, bandY + bandH, 1, plotY - bandY - bandH, SPAN);
    img.fill(band.x + band.w - 1, bandY + bandH, 1, plotY - bandY - bandH, SPAN);
  }

  // row ticks (right-aligned numbers, centred on the row)
  for (const r of rowTicks) {
    const s = String(r);
    const cy = plotY + r * cellH + Math.floor(cellH / 2);
    img.text(left - 6 - bitmapTextWidth(s, S), cy - Math.floor(lineH / 2), s, INK, S);
    img.fill(left - 4, cy, 3, 1, INK);
  }
  // column ticks
  const tickY = plotY + plotH + 1;
  let lastEnd = -Infinity;
  for (const c of colTicks) {
    const s = String(c);
    const cx = left + c * cellW + Math.floor(cellW / 2);
    img.fill(cx, tickY, 1, 4, INK);
    const w = bitmapTextWidth(s, S);
    const x = Math.min(cx - Math.floor(w / 2), left + plotW - w);
    if (x > lastEnd + 6) {
      img.text(Math.max(0, x), tickY + 7, s, INK, S);
      lastEnd = x + w;
    }
  }
  if (spec.colTitle) img.text(left + Math.floor((plotW - bitmapTextWidth(spec.colTitle, S)) / 2), tickY + 7 + lineH + 8, spec.colTitle, INK, S);

  // colour bar: max at the top
  for (let yy = 0; yy < plotH; yy++) img.fill(cbX, plotY + yy, cbW, 1, viridis(1 - yy / Math.max(1, plotH - 1)));
  img.outline(cbX - 1, plotY - 1, cbW + 2, plotH + 2, INK);
  const lx = cbX + cbW + 6;
  img.text(lx, plotY, cbLabels[0], INK, S);
  if (plotH >= 3 * lineH + 8) img.text(lx, plotY + Math.floor((plotH - lineH) / 2), cbLabels[1], INK, S);
  img.text(lx, plotY + plotH - lineH, cbLabels[2], INK, S);

  return {
    png: img.png(),
    layout: { width, height, cellW, cellH, plot: { x: left, y: plotY, w: plotW, h: plotH }, colorbar: { x: cbX, y: plotY, w: cbW, h: plotH }, band },
    min,
    max,
  };
}
