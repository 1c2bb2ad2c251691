/** Figures of the intervention commands: per-layer curves of a statistic, one line per condition, with ± 1 std bands. */
import type { Stat } from '../analysis/aggregate.ts';
import type { Figure } from './figures.ts';
import { lineChart, PALETTE } from './svg.ts';

export interface IntervalFigureSpec {
  id: string;
  file: string;
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  caption: string;
  series: { name: string; x: readonly number[]; stats: readonly Stat[] }[];
  /** Clamp the y axis (e.g. [0, 1] for a share). */
  yBounds?: readonly [number, number];
}

export function intervalFigure(s: IntervalFigureSpec): Figure {
  const data = lineChart({
    title: s.title,
    subtitle: s.subtitle,
    xLabel: s.xLabel,
    yLabel: s.yLabel,
    series: s.series.map((c, i) => ({
      name: c.name,
      x: c.x,
      y: c.stats.map((t) => t.mean),
      band: c.stats.some((t) => t.std !== null) ? c.stats.map((t) => t.std) : undefined,
      bandLabel: '± 1 std',
      color: PALETTE[i % PALETTE.length],
    })),
    yBounds: s.yBounds,
  });
  return { id: s.id, file: s.file, title: s.title, caption: s.caption, kind: 'svg', data };
}
