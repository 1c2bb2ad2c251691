import { describe, expect, it } from 'vitest';
import { formatTick, lineChart, niceDomain, niceStep, ticksFor } from '../../src/report/svg.ts';
import { aggregate } from '../../src/analysis/aggregate.ts';
import { buildFigures, phaseSpans } from '../../src/report/figures.ts';
import { PAPER_PHASES } from '../../src/analysis/phases.ts';
import { checkXml } from './xml.ts';
import { syntheticImage } from './synthetic.ts';

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;
const texts = (svg: string, cls: string) =>
  [...svg.matchAll(new RegExp(`<text class="${cls}"[^>]*>([^<]*)</text>`, 'g'))].map((m) => m[1]);

/** 1, 2 or 5 × 10^k */
function isNice(step: number): boolean {
  const p = Math.pow(10, Math.floor(Math.log10(step) + 1e-9));
  return [1, 2, 5, 10].some((m) => Math.abs(step / p - m) < 1e-9);
}

describe('ticks', () => {
  it('nice steps', () => {
    expect(niceStep(0.42, 6)).toBeCloseTo(0.1, 15);
    expect(niceStep(32, 8)).toBe(5);
    expect(niceStep(8, 8)).toBe(1);
    expect(niceStep(1, 6)).toBeCloseTo(0.2, 15);
    expect(niceStep(0.0007, 6)).toBeCloseTo(0.0002, 15);
    for (const span of [0.013, 0.9, 3, 77, 1234]) expect(isNice(niceStep(span))).toBe(true);
  });
  it('tick values and labels', () => {
    expect(ticksFor(0, 32, 5)).toEqual([0, 5, 10, 15, 20, 25, 30]);
    expect(ticksFor(-0.1, 0.5, 0.1).map((t) => formatTick(t, 0.1))).toEqual(['-0.1', '0.0', '0.1', '0.2', '0.3', '0.4', '0.5']);
    expect(formatTick(-1e-17, 0.05)).toBe('0.00');
    expect(formatTick(1500, 500)).toBe('1500');
    const d = niceDomain(0.013, 0.387);
    expect(d.lo).toBeLessThanOrEqual(0.013);
    expect(d.hi).toBeGreaterThanOrEqual(0.387);
    expect(isNice(d.step)).toBe(true);
    expect(niceDomain(2, 2).hi).toBeGreaterThan(2);
  });
});

describe('lineChart', () => {
  const x = Array.from({ length: 9 }, (_, i) => i);
  const svg = lineChart({
    title: 'Test <chart> & co',
    subtitle: 'sub',
    xLabel: 'layer l',
    yLabel: 'value',
    series: [
      { name: 'a', x, y: x.map((v) => v / 10), band: x.map(() => 0.05) },
      { name: 'b', x, y: x.map((v, i) => (i === 4 ? null : 1 - v / 10)) },
    ],
    regions: [
      { x0: 0, x1: 3, label: 'first region' },
      { x0: 3, x1: 8, label: 'second' },
    ],
    markers: [{ x: 8, y: 0.7, err: 0.1, label: 'pre-norm' }],
  });

  it('is well-formed XML with one <svg> root', () => {
    const names = checkXml(svg);
    expect(names[0]).toBe('svg');
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain('Test &lt;chart&gt; &amp; co');
  });

  it('draws every finite point, breaks the line at null', () => {
    expect(count(svg, /class="point"/g)).toBe(9 + 8);
    expect(count(svg, /<polyline /g)).toBe(1 + 2);
    expect(count(svg, /class="band"/g)).toBe(1);
    expect(count(svg, /class="marker"/g)).toBe(1);
  });

  it('has integer x ticks 0..8 and nice, evenly spaced y ticks', () => {
    expect(texts(svg, 'tick-label x')).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    expect(count(svg, /class="tick x"/g)).toBe(9);
    const ys = texts(svg, 'tick-label y').map(Number);
    expect(ys.length).toBeGreaterThanOrEqual(4);
    expect(ys.length).toBeLessThanOrEqual(12);
    const step = ys[1] - ys[0];
    expect(isNice(step)).toBe(true);
    for (let i = 1; i < ys.length; i++) expect(ys[i] - ys[i - 1]).toBeCloseTo(step, 9);
    expect(ys[0]).toBeLessThanOrEqual(-0.05 + 1e-9); // band of series a goes down to −0.05
    expect(ys[ys.length - 1]).toBeGreaterThanOrEqual(1);
  });

  it('has the title, axis titles, region labels and a legend entry per line, band, marker and region', () => {
    expect(texts(svg, 'axis-title x')).toEqual(['layer l']);
    expect(texts(svg, 'axis-title y')).toEqual(['value']);
    expect(count(svg, /class="region"/g)).toBe(2);
    expect(texts(svg, 'region-label')).toEqual(['first region', 'second']);
    expect(count(svg, /class="legend-item"/g)).toBe(2 + 1 + 1 + 2);
    for (const s of ['a ± std', 'pre-norm', 'first region']) expect(svg).toContain(`>${s}</text>`);
  });

  it('the XML check itself rejects broken documents', () => {
    expect(() => checkXml('<svg><g></svg>')).toThrow();
    expect(() => checkXml('<svg><text>a & b</text></svg>')).toThrow(/entity/);
    expect(() => checkXml('<svg x=1/>')).toThrow(/attributes/);
    expect(() => checkXml('<svg/><svg/>')).toThrow(/root/);
  });

  it('yBounds clamps the axis; data is clipped to the plot area', () => {
    const c = lineChart({ title: 'share', xLabel: 'x', yLabel: 'y', series: [{ name: 's', x: [0, 1, 2], y: [0.01, 0.5, 0.99], band: [0.1, 0.1, 0.1] }], yBounds: [0, 1] });
    const ys = texts(c, 'tick-label y').map(Number);
    expect(ys[0]).toBe(0);
    expect(ys[ys.length - 1]).toBe(1);
    expect(c).toMatch(/<clipPath id="(plot-[a-z0-9]+)">[\s\S]*clip-path="url\(#\1\)"/);
  });

  it('a range band runs from lo to hi (not symmetric around y) and widens the domain to hold it', () => {
    const lo = [0.2, 0.3, 0.45];
    const hi = [0.9, 0.8, 0.55];
    const c = lineChart({ title: 'q', xLabel: 'x', yLabel: 'y', series: [{ name: 'median', x: [0, 1, 2], y: [0.5, 0.5, 0.5], range: { lo, hi }, bandLabel: 'q1–q3' }], yDomain: [0, 1], plotHeight: 340 });
    const poly = c.match(/<polygon class="band" points="([^"]+)"/)![1].split(' ').map((p) => Number(p.split(',')[1]));
    const line = Number(c.match(/<polyline points="[\d.]+,([\d.]+)/)![1]);
    // 340 px per unit of y; the polygon walks the upper edge, then the lower edge back
    expect(poly).toHaveLength(6);
    [...hi, ...[...lo].reverse()].forEach((v, i) => expect(poly[i]).toBeCloseTo(line - (v - 0.5) * 340, 1));
    expect(c).toContain('>median q1–q3</text>');
    const auto = lineChart({ title: 'q', xLabel: 'x', yLabel: 'y', series: [{ name: 'm', x: [0, 1], y: [0.5, 0.5], range: { lo: [0.1, 0.4], hi: [0.6, 1.7] } }] });
    const ys = texts(auto, 'tick-label y').map(Number);
    expect(ys[0]).toBeLessThanOrEqual(0.1);
    expect(ys[ys.length - 1]).toBeGreaterThanOrEqual(1.7);
  });

  it('survives empty data', () => {
    expect(checkXml(lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [] }))[0]).toBe('svg');
  });
});

describe('figures from the aggregate', () => {
  const imgs = Array.from({ length: 4 }, (_, i) => syntheticImage(i, { L: 8, peaks: [2, 4, 6] }));
  const a = aggregate(imgs);
  const figs = buildFigures(a);

  it('Fig. 1 shades and names the four phases, plots L + 1 points and the pre-norm marker', () => {
    const f = figs.find((g) => g.id === 'fig1')!;
    const svg = f.data as string;
    checkXml(svg);
    expect(count(svg, /class="point"/g)).toBe(9);
    expect(count(svg, /class="region"/g)).toBe(4);
    for (const p of PAPER_PHASES) expect(svg).toContain(`>${p}</text>`); // legend names each phase
    expect(count(svg, /class="marker"/g)).toBe(1);
    expect(f.caption).toMatch(/0 = input embeddings/);
    expect(f.caption).toMatch(/before the final norm/);
  });

  it('phase spans: labelled by direction when the labels do not match the runs', () => {
    const curve = [0, 1, 2, 1, 0];
    expect(phaseSpans({ boundaries: [2], labels: [] }, curve)).toEqual([
      { x0: 0, x1: 2, label: '1 rise', direction: 'rise' },
      { x0: 2, x1: 4, label: '2 fall', direction: 'fall' },
    ]);
    expect(phaseSpans(null, curve)).toEqual([]);
  });

  it('Fig. 3 has two curves with bands; Fig. 5 one; all SVGs are well-formed', () => {
    const f3 = figs.find((g) => g.id === 'fig3')!.data as string;
    expect(count(f3, /class="series"/g)).toBe(2);
    expect(count(f3, /class="band"/g)).toBe(2);
    expect(count(f3, /class="point"/g)).toBe(18);
    const f5 = figs.find((g) => g.id === 'fig5')!.data as string;
    expect(count(f5, /class="point"/g)).toBe(9);
    for (const f of figs.filter((g) => g.kind === 'svg')) checkXml(f.data as string);
  });
});
