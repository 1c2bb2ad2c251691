/**
 * Synthetic per-image metrics with a known shape, for the report tests and for looking at
 * the figures: the inter-modal curve rises to layer `peaks[0]`, falls to `peaks[1]`, rises to
 * `peaks[2]` and falls to L (the paper's four phases), plus a small per-image offset.
 */
import type { ImageMetrics } from '../../src/analysis/aggregate.ts';

export interface SyntheticOptions {
  L?: number;
  heads?: number;
  seq?: number;
  image?: [number, number];
  /** Turning points of the inter curve. */
  peaks?: [number, number, number];
  /** Per-image offset added to every curve value: offset(i). */
  offset?: (i: number) => number;
  recall?: boolean;
  k?: number;
}

/** Piecewise-linear rise/fall/rise/fall curve over l = 0..L through (0, 0.02), (p0, 0.3), (p1, 0.1), (p2, 0.4), (L, 0.15). */
export function fourPhaseCurve(L: number, peaks: [number, number, number]): number[] {
  const pts: [number, number][] = [
    [0, 0.02],
    [peaks[0], 0.3],
    [peaks[1], 0.1],
    [peaks[2], 0.4],
    [L, 0.15],
  ];
  return Array.from({ length: L + 1 }, (_, l) => {
    let k = 0;
    while (k + 1 < pts.length - 1 && l > pts[k + 1][0]) k++;
    const [xa, ya] = pts[k];
    const [xb, yb] = pts[k + 1];
    return ya + ((yb - ya) * (l - xa)) / (xb - xa);
  });
}

export function syntheticImage(i: number, o: SyntheticOptions = {}): ImageMetrics {
  const L = o.L ?? 8;
  const H = o.heads ?? 2;
  const seq = o.seq ?? 24;
  const image = o.image ?? [3, 15];
  const peaks = o.peaks ?? [2, 4, 6];
  const off = (o.offset ?? ((j: number) => 0.01 * j))(i);
  const inter = fourPhaseCurve(L, peaks).map((v) => v + off);
  const text = Array.from({ length: seq }, (_, j) => j).filter((j) => j < image[0] || j >= image[1]);
  // norm attention: image keys get weight growing with the layer, text keys constant, BOS a sink
  const layer = Array.from({ length: L }, (_, l) =>
    Array.from({ length: seq }, (_, j) => (j === 0 ? 2 : j >= image[0] && j < image[1] ? 0.05 + (0.2 * l) / L + 0.01 * ((j * 7 + i) % 5) : 0.1)),
  );
  const k = o.k ?? 3;
  const nImg = image[1] - image[0];
  return {
    model: 'synthetic-llava',
    image: `img${i}.jpg`,
    options: { dtype: 'f32', drop_bos: false, query: seq - 1, k },
    phaselens_version: '0.1.0-test',
    tokens: { seq, image, text },
    contextualization: {
      inter,
      intra_image: Array.from({ length: L + 1 }, (_, l) => 0.9 - (0.5 * l) / L + off),
      intra_text: Array.from({ length: L + 1 }, (_, l) => 0.2 + (0.4 * l) / L + off),
      last_layer_prenorm: { inter: inter[L] - 0.05, intra_image: 0.5 + off, intra_text: 0.55 + off },
    },
    norm_attention: { query: seq - 1, layer, head: layer.map((row) => Array.from({ length: H }, () => row.map((v) => v / H))) },
    logit_lens: {
      k,
      top_ids: Array.from({ length: L + 1 }, () => Array.from({ length: nImg }, () => Array.from({ length: k }, (_, t) => t))),
      top_probs: Array.from({ length: L + 1 }, () => Array.from({ length: nImg }, () => Array.from({ length: k }, () => 1 / k))),
    },
    ...(o.recall === false ? {} : { recall: Array.from({ length: L + 1 }, (_, l) => Math.min(1, (l / L) * 0.6 + off)) }),
    phases: { boundaries: [...peaks], labels: ['I alignment', 'II intra-modal encoding', 'III inter-modal encoding', 'IV output preparation'] },
  };
}
