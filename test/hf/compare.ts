/**
 * The comparisons of the HF parity tests (test/hf/parity.test.ts and
 * llava-next-parity.test.ts; the tolerances are justified in parity.test.ts's header):
 * every dump tensor against HF's, analyze's metrics against hf_metrics.py's on HF's
 * outputs, LogitLens ids up to near-tie swaps.
 */
import { expect } from 'vitest';
import { analyzeImage } from '../../src/analysis/analyze-image.ts';
import type { RgbImage } from '../../src/io/image.ts';
import type { PromptSpec, Vlm } from '../../src/models/vlm.ts';
import type { HostTensor } from '../../src/probes/dump.ts';
import { getGpu, relErr } from '../helpers/gpu.ts';
import type { RefTensor } from '../reference/pyref.ts';

export const TOL = 1e-4;
const TIE = 1e-5;

export interface Metrics {
  contextualization: Record<'inter' | 'intra_image' | 'intra_text', (number | null)[]> & {
    last_layer_prenorm: Record<'inter' | 'intra_image' | 'intra_text', number | null>;
  };
  norm_attention: { query: number; layer: number[][]; head: number[][][] };
  logit_lens: { k: number; top_ids: number[][][]; top_probs: number[][][] };
}

/** analyze's metrics (phaselens probes) against hf_metrics.py's on HF's outputs; tolerances in the header. */
export async function compareMetrics(what: string, m: Vlm, spec: PromptSpec, rgb: RgbImage, o: { dropBos: boolean; query?: number; topk: number }, tokens: { image: [number, number]; text: number[] }, r: Metrics): Promise<void> {
  const a = (await analyzeImage(await getGpu(), m, { id: what, image: what, captions: [] }, rgb, { prompt: spec, smooth: 1, padToSquare: false, ...o })) as unknown as Metrics & {
    tokens: { image: [number, number]; text: number[] };
  };
  expect(a.tokens.image).toEqual(tokens.image);
  expect(a.tokens.text).toEqual(tokens.text);
  const report: string[] = [];
  for (const key of ['inter', 'intra_image', 'intra_text'] as const) {
    const got = a.contextualization[key];
    const want = r.contextualization[key];
    expect(got.length, key).toBe(want.length);
    expect(got.map((v) => v === null), key).toEqual(want.map((v) => v === null));
    const d = Math.max(...got.map((v, i) => Math.abs((v ?? 0) - (want[i] ?? 0))));
    const p = Math.abs((a.contextualization.last_layer_prenorm[key] ?? 0) - (r.contextualization.last_layer_prenorm[key] ?? 0));
    report.push(`${key} |Δ| ${d.toExponential(2)} prenorm ${p.toExponential(2)}`);
    expect(d, key).toBeLessThanOrEqual(TOL);
    expect(p, `prenorm ${key}`).toBeLessThanOrEqual(TOL);
  }
  expect(a.norm_attention.query).toBe(r.norm_attention.query);
  expect(a.norm_attention.head.flat(2).length).toBe(r.norm_attention.head.flat(2).length);
  const la = relErr(a.norm_attention.layer.flat(), r.norm_attention.layer.flat());
  const ha = relErr(a.norm_attention.head.flat(2), r.norm_attention.head.flat(2));
  report.push(`norm attention rel layer ${la.toExponential(2)} head ${ha.toExponential(2)}`);
  expect(la).toBeLessThanOrEqual(TOL);
  expect(ha).toBeLessThanOrEqual(TOL);
  const lens = compareLens(a.logit_lens, r.logit_lens);
  report.push(`logit lens prob rel ${lens.prob.toExponential(2)}, tie swaps ${lens.swaps}`);
  expect(lens.prob).toBeLessThanOrEqual(TOL);
  console.log(`${what}: ${report.join('; ')}`);
}

export function compareDump(what: string, ours: Map<string, HostTensor>, hf: Map<string, RefTensor>, tol: number, layers: number): void {
  // the dump holds exactly what HF returned (image_rgb, image_sizes, greedy_tokens and greedy_scores are inputs and generate's)
  expect([...ours.keys()].sort()).toEqual([...hf.keys()].filter((n) => !['image_rgb', 'image_sizes', 'greedy_tokens', 'greedy_scores'].includes(n)).sort());
  const rows: string[] = [];
  let worst = 0;
  for (const [name, t] of ours) {
    if (name.endsWith('input_ids') || name === 'pixel_values') continue;
    const want = hf.get(name);
    expect(want, `HF has no ${name}`).toBeDefined();
    expect(t.shape, name).toEqual(want!.shape);
    const e = relErr(t.data, want!.data);
    worst = Math.max(worst, e);
    rows.push(`${name.padEnd(26)} ${e.toExponential(2)}`);
    expect(e, name).toBeLessThanOrEqual(tol);
  }
  expect(rows.length).toBeGreaterThan(2 * layers);
  console.log(`${what}: worst rel ${worst.toExponential(2)}\n  ${rows.join('\n  ')}`);
}

export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** LogitLens: same shapes; ids equal except near-tie swaps; the worst probability error relative to each row's top probability. */
function compareLens(a: Metrics['logit_lens'], r: Metrics['logit_lens']): { prob: number; swaps: number } {
  expect(a.k).toBe(r.k);
  expect(a.top_ids.length).toBe(r.top_ids.length);
  let prob = 0;
  let swaps = 0;
  r.top_ids.forEach((layer, l) => {
    expect(a.top_ids[l].length, `layer ${l}`).toBe(layer.length);
    layer.forEach((want, t) => {
      const got = a.top_ids[l][t];
      const rp = r.top_probs[l][t];
      expect(got.length).toBe(want.length);
      got.forEach((id, i) => {
        prob = Math.max(prob, Math.abs(a.top_probs[l][t][i] - rp[i]) / rp[0]);
        if (id === want[i]) return;
        swaps++;
        const j = want.indexOf(id);
        expect(j, `layer ${l} token ${t}: id ${id} not in HF's top-${r.k}`).toBeGreaterThanOrEqual(0);
        expect(Math.abs(Math.log(rp[j] / rp[i])), `layer ${l} token ${t} rank ${i}`).toBeLessThanOrEqual(TIE);
      });
    });
  });
  return { prob, swaps };
}
