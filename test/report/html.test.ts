import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { aggregate } from '../../src/analysis/aggregate.ts';
import { buildFigures } from '../../src/report/figures.ts';
import { renderReport, type ReportMeta } from '../../src/report/html.ts';
import { writeReport } from '../../src/pipeline/outputs.ts';
import { checkXml } from './xml.ts';
import { syntheticImage } from './synthetic.ts';

const imgs = Array.from({ length: 3 }, (_, i) => syntheticImage(i, { L: 8, peaks: [2, 4, 6] }));
const agg = aggregate(imgs);
const figures = buildFigures(agg);
const meta: ReportMeta = {
  model: 'tiny <llava>',
  dataset: 'folder:/data/imgs',
  dtype: 'f16',
  adapter: 'llvmpipe (shader-f16)',
  errors: [{ image: 'broken.jpg', error: 'unreadable JPEG: bad marker' }],
  phaselens_version: '9.9.9',
  date: '2026-01-02T03:04:05Z',
  extra: { command: 'phaselens analyze --drop-bos' },
};

describe('report.html', () => {
  const html = renderReport({ meta, aggregate: agg, perImageSample: imgs[0], figures });

  it('builds every figure the aggregate supports', () => {
    expect(figures.map((f) => f.file)).toEqual(['fig1_inter.svg', 'fig3_intra.svg', 'fig4_norm_attention.png', 'fig4_image_share.svg', 'fig5_recall.svg']);
    const noRecall = buildFigures(aggregate(imgs.map((m) => ({ ...m, recall: undefined }))));
    expect(noRecall.map((f) => f.id)).not.toContain('fig5');
  });

  it('inlines every SVG and embeds the PNG as a data URI, each with a caption', () => {
    for (const f of figures) expect(html).toContain(`<figure id="${f.id}"`);
    expect(html.match(/<figcaption>/g)!.length).toBe(figures.length);
    const svgs = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    expect(svgs.length).toBe(4);
    for (const s of svgs) checkXml(s);
    const uri = /src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/.exec(html);
    expect(uri).not.toBeNull();
    const png = decode(Buffer.from(uri![1], 'base64'));
    expect(png.width).toBeGreaterThan(100);
    expect(Buffer.from(uri![1], 'base64').equals(Buffer.from(figures.find((f) => f.kind === 'png')!.data as Uint8Array))).toBe(true);
    expect(html).not.toMatch(/<script|src="http|href="http/); // self-contained
    const ids = [...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length); // inlined SVGs do not clash
  });

  it('shows the run metadata', () => {
    for (const s of [
      'tiny &lt;llava&gt;',
      'folder:/data/imgs',
      'f16',
      'llvmpipe (shader-f16)',
      '9.9.9',
      '2026-01-02T03:04:05Z',
      'broken.jpg',
      'unreadable JPEG: bad marker',
      'phaselens analyze --drop-bos',
      'HF output_hidden_states',
      'L = after the final norm',
    ])
      expect(html).toContain(s);
    expect(html).toMatch(/<th>drop_bos<\/th><td>false<\/td>/);
    expect(html).toMatch(/<th>images with results<\/th><td>3<\/td>/);
    expect(html).toMatch(/<th>errors<\/th><td>1<\/td>/);
    expect(html).toMatch(/<th>layers L<\/th><td>8<\/td>/);
    expect(html).toMatch(/<th>sequence length<\/th><td>24<\/td>/);
  });

  it('has a phase table with the four paper phases and their layer ranges', () => {
    const table = /<table class="phases">[\s\S]*?<\/table>/.exec(html)![0];
    const rows = [...table.matchAll(/<tr><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/g)].map((m) => [m[1], m[2], m[3]]);
    expect(rows).toEqual([
      ['I alignment', 'rise', '0–2'],
      ['II intra-modal encoding', 'fall', '2–4'],
      ['III inter-modal encoding', 'rise', '4–6'],
      ['IV output preparation', 'fall', '6–8'],
    ]);
  });

  it('writeReport writes report.html and every figure under figures/', () => {
    const dir = mkdtempSync(join(tmpdir(), 'phaselens-report-'));
    const path = writeReport(dir, { meta, aggregate: agg, perImageSample: imgs[0], figures });
    expect(path).toBe(join(dir, 'report.html'));
    expect(readFileSync(path, 'utf8')).toContain('<figure id="fig1"');
    for (const f of figures) expect(existsSync(join(dir, 'figures', f.file))).toBe(true);
    checkXml(readFileSync(join(dir, 'figures', 'fig1_inter.svg'), 'utf8'));
    expect(decode(readFileSync(join(dir, 'figures', 'fig4_norm_attention.png'))).channels).toBe(3);
  });

  it('renders with no images at all', () => {
    const empty = aggregate([]);
    expect(buildFigures(empty)).toEqual([]);
    const h = renderReport({ meta: { model: 'm' }, aggregate: empty, figures: [] });
    expect(h).toContain('No phases');
    expect(h).toMatch(/<th>images with results<\/th><td>0<\/td>/);
  });
});
