/**
 * Phases of a per-layer curve: maximal monotone runs, after an optional centred moving
 * average (window w, shrinking at the ends). The window is centred on each layer, so it is
 * odd (w = 2h + 1: h layers each side); an even one is refused rather than silently widened. The paper's four phases are the runs
 * rise, fall, rise, fall = I alignment, II intra-modal encoding, III inter-modal encoding,
 * IV output preparation; a curve with another shape gets its runs labelled by direction.
 */
import { UserError } from '../errors.ts';

export interface Phases {
  /** Layer indices where a run ends and the next begins (turning points), ascending. */
  boundaries: number[];
  /** One label per run (boundaries.length + 1 runs). */
  labels: string[];
  /** Direction of each run. */
  directions: ('rise' | 'fall')[];
  /** Smoothing window used (1 = none). */
  window: number;
}

export const PAPER_PHASES = ['I alignment', 'II intra-modal encoding', 'III inter-modal encoding', 'IV output preparation'];

/** `--smooth W` (and the page's field): 1 = none, else an odd window. */
export function checkSmoothWindow(window: number, what = '--smooth'): number {
  if (!Number.isInteger(window) || window < 1 || window % 2 === 0) {
    throw new UserError(`${what} ${window}: the moving average is centred on each layer, so the window must be an odd whole number (1 = none, 3, 5, …)`);
  }
  return window;
}

export function smooth(y: readonly number[], window: number): number[] {
  if (checkSmoothWindow(window) === 1) return [...y];
  const h = Math.floor(window / 2);
  return y.map((_, i) => {
    const a = Math.max(0, i - h);
    const b = Math.min(y.length, i + h + 1);
    let s = 0;
    for (let j = a; j < b; j++) s += y[j];
    return s / (b - a);
  });
}

export function segmentPhases(curve: readonly (number | null)[], window = 1): Phases {
  const y = smooth(
    curve.map((v) => (v === null || !Number.isFinite(v) ? NaN : v)),
    window,
  );
  const directions: ('rise' | 'fall')[] = [];
  const boundaries: number[] = [];
  let dir: 'rise' | 'fall' | undefined;
  for (let i = 1; i < y.length; i++) {
    const d = y[i] - y[i - 1];
    if (!Number.isFinite(d) || d === 0) continue; // flat steps extend the current run
    const now = d > 0 ? 'rise' : 'fall';
    if (dir && now !== dir) boundaries.push(i - 1);
    if (now !== dir) directions.push(now);
    dir = now;
  }
  const paper = directions.join(',') === 'rise,fall,rise,fall';
  const labels = paper ? [...PAPER_PHASES] : directions.map((d, i) => `${i + 1} ${d}`);
  return { boundaries, labels, directions, window };
}
