import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { FONT_CHARS, Raster, bitmapTextWidth, heatmapPng, viridis, type Heatmap } from '../../src/report/heatmap.ts';

const decoded = new WeakMap<Heatmap, ReturnType<typeof decode>>();
function pixel(h: Heatmap, x: number, y: number): number[] {
  if (!decoded.has(h)) decoded.set(h, decode(h.png));
  const img = decoded.get(h)!;
  const c = img.channels;
  const i = (y * img.width + x) * c;
  return Array.from(img.data.slice(i, i + 3));
}

// 3 rows × 10 columns: row r, column c → r * 10 + c (0..29), one NaN cell
const values = Array.from({ length: 3 }, (_, r) => Array.from({ length: 10 }, (_, c) => (r === 1 && c === 5 ? Number.NaN : r * 10 + c)));

describe('viridis', () => {
  it('ends and middle of matplotlib viridis', () => {
    expect(viridis(0)).toEqual([0x44, 0x01, 0x54]);
    expect(viridis(1)).toEqual([0xfd, 0xe7, 0x25]);
    expect(viridis(0.5)).toEqual([0x21, 0x91, 0x8c]);
    expect(viridis(-3)).toEqual(viridis(0));
    expect(viridis(7)).toEqual(viridis(1));
  });
  it('gets lighter from 0 to 1 (perceptual map)', () => {
    const lum = (t: number) => {
      const [r, g, b] = viridis(t);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    for (let t = 0.05; t <= 1; t += 0.05) expect(lum(t)).toBeGreaterThan(lum(t - 0.05));
  });
});

describe('heatmapPng', () => {
  const h = heatmapPng({ values, title: 'TEST', rowTitle: 'LAYER', colTitle: 'KEY POSITION', span: { start: 2, end: 6, label: 'IMAGE' } });

  it('decodes to an RGB image of the laid-out size', () => {
    const img = decode(h.png);
    expect(img.width).toBe(h.layout.width);
    expect(img.height).toBe(h.layout.height);
    expect(img.channels).toBe(3);
    expect(h.layout.plot.w).toBe(10 * h.layout.cellW);
    expect(h.layout.plot.h).toBe(3 * h.layout.cellH);
    expect(h.min).toBe(0);
    expect(h.max).toBe(29);
  });

  it('cells carry the linear viridis colour of their value; NaN is grey', () => {
    const { plot, cellW, cellH } = h.layout;
    const at = (r: number, c: number) => pixel(h, plot.x + c * cellW + (cellW >> 1), plot.y + r * cellH + (cellH >> 1));
    expect(at(0, 0)).toEqual([...viridis(0)]);
    expect(at(2, 9)).toEqual([...viridis(1)]);
    expect(at(1, 4)).toEqual([...viridis(14 / 29)]);
    expect(at(1, 5)).toEqual([150, 150, 150]);
  });

  it('has a colour bar from max (top) to min (bottom) with labels beside it', () => {
    const cb = h.layout.colorbar;
    const mid = cb.x + (cb.w >> 1);
    expect(pixel(h, mid, cb.y)).toEqual([...viridis(1)]);
    expect(pixel(h, mid, cb.y + cb.h - 1)).toEqual([...viridis(0)]);
    // some dark ink right of the bar (the "29" and "0" labels)
    const img = decode(h.png);
    let ink = 0;
    for (let y = cb.y; y < cb.y + cb.h; y++)
      for (let x = cb.x + cb.w + 2; x < img.width; x++) if (pixel(h, x, y)[0] < 80) ink++;
    expect(ink).toBeGreaterThan(20);
  });

  it('marks the span with a band over exactly its columns', () => {
    const b = h.layout.band!;
    expect(b.x).toBe(h.layout.plot.x + 2 * h.layout.cellW);
    expect(b.w).toBe(4 * h.layout.cellW);
    expect(pixel(h, b.x + 1, b.y + 1)).toEqual([230, 97, 1]);
    expect(pixel(h, b.x - 2, b.y + 1)).not.toEqual([230, 97, 1]);
  });

  it('log scale: the geometric mean of the range sits in the middle of the map', () => {
    const g = heatmapPng({ values: [[1, 10, 100]], scale: 'log' });
    const { plot, cellW, cellH } = g.layout;
    expect(pixel(g, plot.x + cellW + 1, plot.y + (cellH >> 1))).toEqual([...viridis(0.5)]);
    expect(g.min).toBe(1);
    expect(g.max).toBe(100);
  });

  it('masked columns are light grey and do not set the colour range', () => {
    const g = heatmapPng({ values: [[1, 2, 3, 0]], maskFrom: 3 });
    const { plot, cellW, cellH } = g.layout;
    expect(pixel(g, plot.x + 3 * cellW + 1, plot.y + (cellH >> 1))).toEqual([225, 225, 225]);
    expect(g.min).toBe(1);
    expect(pixel(g, plot.x + 1, plot.y + (cellH >> 1))).toEqual([...viridis(0)]);
  });

  it('rejects empty and ragged input', () => {
    expect(() => heatmapPng({ values: [] })).toThrow(/empty/);
    expect(() => heatmapPng({ values: [[1, 2], [3]] })).toThrow(/ragged/);
  });
});

describe('bitmap font', () => {
  it('has 5×7 glyphs and draws text of the expected width', () => {
    expect(FONT_CHARS).toContain('0');
    expect(FONT_CHARS).toContain('Z');
    const r = new Raster(100, 20);
    const w = r.text(2, 2, 'L1', [0, 0, 0], 2);
    expect(w).toBe(bitmapTextWidth('L1', 2));
    // 'L' = 11 ink cells, '1' = 10 ink cells, each 2 × 2 px
    let ink = 0;
    for (let i = 0; i < r.data.length; i += 3) if (r.data[i] === 0) ink++;
    expect(ink).toBe((11 + 10) * 4);
  });
});
