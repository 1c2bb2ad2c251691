import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aggregate, aggregateCsv, imageShare, stat, type ImageMetrics } from '../../src/analysis/aggregate.ts';
import { writeAggregate } from '../../src/pipeline/outputs.ts';
import { PAPER_PHASES } from '../../src/analysis/phases.ts';
import { syntheticImage } from './synthetic.ts';

/** A tiny hand-written image record: L = 2 decoder layers, seq 4, image tokens [1, 3). */
function tiny(name: string, inter: number[], extra: Partial<ImageMetrics> = {}): ImageMetrics {
  return {
    model: 'tiny',
    image: name,
    options: { dtype: 'f32', drop_bos: false, query: 3, k: 2 },
    phaselens_version: '0.0.0',
    tokens: { seq: 4, image: [1, 3], text: [0, 3] },
    contextualization: {
      inter,
      intra_image: inter.map((v) => v + 10),
      intra_text: inter.map((v) => -v),
      last_layer_prenorm: { inter: inter[2] + 1, intra_image: 0, intra_text: 0 },
    },
    norm_attention: { query: 3, layer: [[1, 2, 3, 4], [0, 1, 1, 0]] },
    ...extra,
  };
}

describe('stat', () => {
  it('mean and sample std (n − 1) on hand-computed values', () => {
    const s = stat([1, 2, 3, 4]);
    expect(s.n).toBe(4);
    expect(s.mean).toBeCloseTo(2.5, 12);
    // Σ(x − 2.5)² = 2.25 + 0.25 + 0.25 + 2.25 = 5; 5 / 3
    expect(s.std).toBeCloseTo(Math.sqrt(5 / 3), 12);
  });
  it('skips non-finite values; std is null when n < 2', () => {
    expect(stat([null, 7, Number.NaN, undefined])).toEqual({ mean: 7, std: null, n: 1 });
    expect(stat([])).toEqual({ mean: null, std: null, n: 0 });
    expect(stat([3, 3, 3]).std).toBe(0);
  });
});

describe('aggregate', () => {
  const imgs = [tiny('a', [0, 1, 2], { recall: [0, 0.5, 1] }), tiny('b', [2, 3, 4], { recall: [0.2, 0.4, 0.6] }), tiny('c', [4, 5, 9])];
  const a = aggregate(imgs);

  it('per-layer means, sample stds and counts', () => {
    expect(a.n_images).toBe(3);
    expect(a.layers).toEqual([0, 1, 2]);
    expect(a.inter.map((s) => s.mean)).toEqual([2, 3, 5]);
    expect(a.inter.map((s) => s.n)).toEqual([3, 3, 3]);
    // layer 0: 0, 2, 4 → Σ(x − 2)² = 8, /2 → 4 → std 2;  layer 2: 2, 4, 9 → 9 + 1 + 16 = 26, /2 → 13
    expect(a.inter[0].std).toBeCloseTo(2, 12);
    expect(a.inter[1].std).toBeCloseTo(2, 12);
    expect(a.inter[2].std).toBeCloseTo(Math.sqrt(13), 12);
    expect(a.intra_image.map((s) => s.mean)).toEqual([12, 13, 15]);
    expect(a.intra_text.map((s) => s.mean)).toEqual([-2, -3, -5]);
    expect(a.last_layer_prenorm!.inter.mean).toBeCloseTo(6, 12);
  });

  it('recall only over images that have it', () => {
    expect(a.recall!.map((s) => s.n)).toEqual([2, 2, 2]);
    expect(a.recall![0].mean).toBeCloseTo(0.1, 12);
    expect(a.recall![1].mean).toBeCloseTo(0.45, 12);
    // 1 and 0.6: mean 0.8, Σ = 0.04 + 0.04 = 0.08, /1 → std √0.08
    expect(a.recall![2].std).toBeCloseTo(Math.sqrt(0.08), 12);
    expect(aggregate([tiny('x', [0, 1, 2])]).recall).toBeNull();
  });

  it('image share of norm attention per decoder layer', () => {
    expect(imageShare([[1, 2, 3, 4]], [1, 3])).toEqual([0.5]);
    expect(imageShare([[0, 0]], [0, 1])).toEqual([null]);
    expect(a.norm_attention_layers).toEqual([0, 1]);
    expect(a.norm_attention_image_share!.map((s) => s.mean)).toEqual([0.5, 1]);
    expect(a.norm_attention_image_share![0].std).toBe(0);
  });

  it('heatmap: element-wise mean for one token layout, else the first image', () => {
    const b = tiny('d', [0, 0, 0], { norm_attention: { query: 3, layer: [[3, 2, 1, 0], [2, 1, 1, 2]] } });
    const m = aggregate([imgs[0], b]).norm_attention_map!;
    expect(m.source).toBe('mean');
    expect(m.n).toBe(2);
    expect(m.layer).toEqual([[2, 2, 2, 2], [1, 1, 1, 1]]);
    const other = tiny('e', [0, 0, 0], { tokens: { seq: 5, image: [1, 3], text: [0, 3, 4] }, norm_attention: { query: 4, layer: [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]] } });
    const f = aggregate([imgs[0], other]).norm_attention_map!;
    expect(f.source).toBe('first');
    expect(f.image).toBe('a');
    expect(f.layer).toEqual(imgs[0].norm_attention!.layer);
  });

  it('skips error records and rejects mixed layer counts', () => {
    const err = { ...tiny('bad', [9, 9, 9]), error: 'unreadable' };
    expect(aggregate([...imgs, err]).n_images).toBe(3);
    expect(() => aggregate([imgs[0], tiny('short', [0, 1])])).toThrow(/layers, expected 3/);
    const empty = aggregate([]);
    expect(empty.n_images).toBe(0);
    expect(empty.phases).toBeNull();
  });

  it('phases of the mean inter curve: a rise/fall/rise/fall shape gives the paper phases', () => {
    const s = Array.from({ length: 5 }, (_, i) => syntheticImage(i, { L: 12, peaks: [3, 6, 9] }));
    const p = aggregate(s).phases!;
    expect(p.boundaries).toEqual([3, 6, 9]);
    expect(p.labels).toEqual(PAPER_PHASES);
    const two = aggregate([tiny('r', [0, 2, 1]), tiny('s', [1, 3, 2])]).phases!;
    expect(two.boundaries).toEqual([1]);
    expect(two.labels).toEqual(['1 rise', '2 fall']);
  });
});

describe('aggregate.csv / aggregate.json', () => {
  const a = aggregate([tiny('a', [0, 1, 2], { recall: [0, 0.5, 1] }), tiny('b', [2, 3, 4])]);

  it('one row per layer with mean, std, n columns; empty cells for missing values', () => {
    const lines = aggregateCsv(a).trim().split('\n');
    const head = lines[0].split(',');
    expect(head.slice(0, 4)).toEqual(['layer', 'inter_mean', 'inter_std', 'inter_n']);
    expect(head).toContain('recall_mean');
    expect(head).toContain('norm_attention_image_share_n');
    expect(lines.length).toBe(1 + 3);
    const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
    expect(rows.map((r) => Number(r.layer))).toEqual([0, 1, 2]);
    expect(Number(rows[2].inter_mean)).toBe(3);
    expect(Number(rows[2].inter_std)).toBeCloseTo(Math.SQRT2, 12);
    expect(rows[1].recall_std).toBe(''); // one image with recall → no sample std
    expect(rows[1].recall_n).toBe('1');
    expect(rows[2].norm_attention_image_share_mean).toBe(''); // row L: no decoder layer L
    expect(rows[2].norm_attention_image_share_n).toBe('0');
  });

  it('writeAggregate writes both files; the JSON round-trips', () => {
    const dir = mkdtempSync(join(tmpdir(), 'phaselens-agg-'));
    const { json, csv } = writeAggregate(dir, a);
    expect(JSON.parse(readFileSync(json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(a)));
    expect(readFileSync(csv, 'utf8')).toBe(aggregateCsv(a));
    expect(JSON.parse(readFileSync(json, 'utf8')).conventions.std).toMatch(/n - 1/);
  });
});
