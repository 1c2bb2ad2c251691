/**
 * `--lens-layers` / `--lens-positions` specs (src/analysis/lens-spec.ts): what each form
 * selects, the canonical form written into the outputs, the refusals, and how a restricted
 * coverage shows up in the aggregate, Fig. 5 and the report (synthetic per-image records).
 */
import { describe, expect, it } from 'vitest';
import { aggregate, aggregateCsv, type ImageMetrics } from '../../src/analysis/aggregate.ts';
import { canonicalSpec, coverageOf, parseIndexSpec, resolveLens } from '../../src/analysis/lens-spec.ts';
import { UserError } from '../../src/errors.ts';
import { buildFigures } from '../../src/report/figures.ts';
import { renderReport } from '../../src/report/html.ts';
import { syntheticImage } from '../report/synthetic.ts';

const DOM = { flag: '--lens-positions', what: 'visual-token position', count: 10 };
const parse = (s: string) => parseIndexSpec(s, DOM);

describe('lens specs', () => {
  it('all, none, indices, inclusive ranges, Python slices, unions', () => {
    expect(parse('all')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(parse(' none ')).toEqual([]);
    expect(parse('3')).toEqual([3]);
    expect(parse('2-4')).toEqual([2, 3, 4]);
    expect(parse('::4')).toEqual([0, 4, 8]);
    expect(parse('1:7:3')).toEqual([1, 4]);
    expect(parse('7:')).toEqual([7, 8, 9]);
    expect(parse(':3')).toEqual([0, 1, 2]);
    expect(parse('0:10')).toEqual(parse('all'));
    expect(parse('9, 0,8 , 2-3,3')).toEqual([0, 2, 3, 8, 9]);
  });

  it('refuses empty, malformed, out-of-range and empty selections with a UserError naming the flag', () => {
    for (const [spec, msg] of [
      ['', /empty/],
      ['1,,2', /empty item/],
      ['x', /not an index/],
      ['-1', /not an index/],
      ['1.5', /not an index/],
      ['10', /10 in "10" is outside 0\.\.9/],
      ['3-12', /outside 0\.\.9/],
      ['5-2', /runs backwards/],
      ['::0', /step .* at least 1/],
      ['0:11', /past 10/],
      ['4:4', /selects nothing/],
      ['1:2:3:4', /more than two colons/],
    ] as const) {
      expect(() => parse(spec), spec).toThrow(UserError);
      expect(() => parse(spec), spec).toThrow(msg);
      expect(() => parse(spec), spec).toThrow(/^--lens-positions /);
    }
  });

  it('canonical form: equal sets give equal strings, and the string parses back to the set', () => {
    for (const s of ['all', 'none', '3', '0,1,2,5', '::4', '1:7:3', '0-2,4:10:2', '9,0,5', '0,2,3,5,8']) {
      const v = parse(s);
      const c = canonicalSpec(v, 10);
      expect(parse(c), `${s} → ${c}`).toEqual(v);
    }
    expect(canonicalSpec(parse('0-9'), 10)).toBe('all');
    expect(canonicalSpec(parse('::4'), 10)).toBe('0:9:4');
    expect(canonicalSpec(parse('0,1,2,5'), 10)).toBe(canonicalSpec(parse('0-2,5'), 10));
    expect(canonicalSpec([], 10)).toBe('none');
  });

  it('resolveLens checks both flags against the model; either one empty turns the lens off', () => {
    expect(resolveLens({}, 3, 9)).toEqual({ layers: [0, 1, 2, 3], positions: [0, 1, 2, 3, 4, 5, 6, 7, 8] });
    expect(resolveLens({ lensLayers: '0,3', lensPositions: '::4' }, 3, 9)).toEqual({ layers: [0, 3], positions: [0, 4, 8] });
    expect(resolveLens({ lensLayers: 'none', lensPositions: '1' }, 3, 9)).toEqual({ layers: [], positions: [] });
    expect(resolveLens({ lensLayers: '1', lensPositions: 'none' }, 3, 9)).toEqual({ layers: [], positions: [] });
    expect(() => resolveLens({ lensLayers: '4' }, 3, 9)).toThrow(/^--lens-layers "4": layer 4 .* outside 0\.\.3/);
    expect(() => resolveLens({ lensPositions: '9' }, 3, 9)).toThrow(/^--lens-positions "9": .* outside 0\.\.8/);
  });
});

/** The synthetic record (L = 8, 12 visual tokens) as a lens restricted to `layers` × `positions` would have written it. */
function restricted(i: number, layers: number[], positions: number[]): ImageMetrics {
  const m = syntheticImage(i);
  const full = m.logit_lens!;
  m.logit_lens = {
    k: full.k,
    layers,
    positions,
    top_ids: layers.map((l) => positions.map((p) => full.top_ids[l][p])),
    top_probs: layers.map((l) => positions.map((p) => full.top_probs[l][p])),
  };
  m.recall = m.recall!.map((v, l) => (layers.includes(l) ? v : null));
  m.options = { ...m.options, lens_layers: canonicalSpec(layers, 9), lens_positions: canonicalSpec(positions, 12) };
  return m;
}

describe('restricted coverage in the aggregate, Fig. 5 and the report', () => {
  it('a result without layers/positions (written before the flags existed) counts as full', () => {
    const m = syntheticImage(0);
    expect(coverageOf(m)).toEqual({ layers: [0, 1, 2, 3, 4, 5, 6, 7, 8], positions: Array.from({ length: 12 }, (_, p) => p) });
    const a = aggregate([m, syntheticImage(1)]);
    expect(a.logit_lens).toEqual({ layers: [0, 1, 2, 3, 4, 5, 6, 7, 8], positions: 'all', n_positions: 12, n_visual: 12, full: true, same: true });
    const fig5 = buildFigures(a).find((f) => f.id === 'fig5')!;
    expect(fig5.caption).not.toMatch(/Restricted|differ in coverage/);
    expect(renderReport({ meta: { model: 'x' }, aggregate: a, figures: [] })).toContain('LogitLens coverage</th><td>full: every hidden-state index 0..8 and all 12 visual tokens');
  });

  it('records the coverage; recall n = 0 at uncovered layers; Fig. 5 draws only covered layers and says so', () => {
    const layers = [0, 4, 8];
    const positions = [0, 3, 6, 9];
    const a = aggregate([0, 1, 2].map((i) => restricted(i, layers, positions)));
    expect(a.logit_lens).toEqual({ layers, positions: '0:10:3', n_positions: 4, n_visual: 12, full: false, same: true });
    expect(a.recall!.map((s) => s.n)).toEqual([3, 0, 0, 0, 3, 0, 0, 0, 3]);
    expect(a.recall![1].mean).toBeNull();
    // the CSV keeps one row per layer: an uncovered layer has empty recall cells and n 0
    expect(aggregateCsv(a).split('\n')[2].split(',').slice(10, 13)).toEqual(['', '', '0']);
    const fig5 = buildFigures(a).find((f) => f.id === 'fig5')!;
    expect(fig5.caption).toMatch(/Restricted LogitLens .* hidden-state indices 0, 4, 8 \(3 of 9\) and visual tokens 0:10:3 \(4 of 12/);
    const svg = fig5.data as string;
    expect(svg).toContain('lens restricted: 3 of 9 layers, 4 of 12 visual tokens');
    expect(svg.match(/class="point"/g)).toHaveLength(3);
    const html = renderReport({ meta: { model: 'x' }, aggregate: a, figures: [] });
    expect(html).toMatch(/LogitLens coverage<\/th><td>Restricted LogitLens/);
    expect(html).not.toContain('option lens_layers');
  });

  it('images made with different coverage (a resumed folder) are flagged, with n per layer counting the images that covered it', () => {
    const a = aggregate([syntheticImage(0), restricted(1, [0, 8], [0, 1])]);
    expect(a.logit_lens!.same).toBe(false);
    expect(a.logit_lens!.full).toBe(true);
    expect(a.recall!.map((s) => s.n)).toEqual([2, 1, 1, 1, 1, 1, 1, 1, 2]);
    const fig5 = buildFigures(a).find((f) => f.id === 'fig5')!;
    expect(fig5.caption).toMatch(/images differ in coverage/);
  });

  it('the lens turned off: coverage none, no recall, no Fig. 5', () => {
    const ms = [0, 1].map((i) => {
      const m = restricted(i, [], []);
      delete m.recall;
      return m;
    });
    const a = aggregate(ms);
    expect(a.logit_lens).toMatchObject({ layers: [], positions: 'none', n_positions: 0, full: false });
    expect(a.recall).toBeNull();
    expect(buildFigures(a).some((f) => f.id === 'fig5')).toBe(false);
    expect(renderReport({ meta: { model: 'x' }, aggregate: a, figures: [] })).toContain('none (LogitLens not run');
  });
});
