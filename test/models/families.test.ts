/**
 * Every family of the table (src/models/registry.ts), end to end on its tiny checkpoint,
 * so a family cannot be half added: make-tiny writes it from the entry's shape and files,
 * `inspect`'s check passes with the entry's summary, `dump` gives the common contract plus
 * the entry's dump points, `analyze` gives finite metrics of the model's sizes, the
 * knockout sweep's cached re-runs equal full masked forwards, and the page's session
 * module (src/web/session.ts, driven under Node with the real Dawn device, the files
 * handed over as Blobs as a browser pick does) reproduces `analyze` exactly. One real
 * Chromium run of the page is test/browser/page.test.ts.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeImage, DEFAULT_PROMPT } from '../../src/analysis/analyze-image.ts';
import { UserError } from '../../src/errors.ts';
import { formatReport } from '../../src/io/inspect.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { blobDirectory } from '../../src/io/source-blob.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { knockoutMask, knockoutSweep, layerWindow } from '../../src/interventions/knockout.ts';
import { runLast } from '../../src/interventions/answer.ts';
import { checkCheckpoint, FAMILIES, familyOf, openModel, parseConfig } from '../../src/models/registry.ts';
import { resolveFlows } from '../../src/pipeline/knockout.ts';
import { dumpActivations } from '../../src/probes/dump.ts';
import { pickedData } from '../../src/web/picked-data.ts';
import { analyzeItems, loadPicked, openPicked } from '../../src/web/session.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu } from '../helpers/gpu.ts';

const root = mkdtempSync(join(tmpdir(), 'phaselens-families-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const IMAGE = new URL('../fixtures/coco_mini/val2017/000000000802.jpg', import.meta.url).pathname;

/** Every number in a JSON value is finite. */
function allFinite(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(allFinite);
  if (v && typeof v === 'object') return Object.values(v).every(allFinite);
  return true;
}

describe('the family table', () => {
  it('an unknown model_type names the known ones', () => {
    const known = FAMILIES.map((f) => f.modelType).join(', ');
    expect(() => parseConfig(JSON.stringify({ model_type: 'paligemma' }), 'x/config.json')).toThrow(new UserError(`x/config.json: model_type "paligemma" is not supported (supported: ${known})`));
    expect(() => familyOf('paligemma', '--arch')).toThrow(`(supported: ${known})`);
  });

  it('every family has a distinct model_type and title, a hub layout first, and a shape for make-random', () => {
    expect(new Set(FAMILIES.map((f) => f.modelType)).size).toBe(FAMILIES.length);
    expect(new Set(FAMILIES.map((f) => f.title)).size).toBe(FAMILIES.length);
    for (const f of FAMILIES) {
      expect(f.layouts[0].id).toBe('hub');
      expect(f.layouts.map((l) => l.id)).toContain(f.transformers5Layout);
      expect(Object.keys(f.shapes).length).toBeGreaterThan(0);
      // every random shape parses as this family's config
      for (const make of Object.values(f.shapes)) expect(parseConfig(JSON.stringify(make())).model_type).toBe(f.modelType);
    }
  });
});

describe.each(FAMILIES.map((f) => [f.modelType, f] as const))('%s: make-tiny → inspect → dump → analyze → knockout → page session', (name, f) => {
  const dir = join(root, name);

  it('runs end to end', async () => {
    const gpu = await getGpu();
    // make-tiny, from the entry's tiny shape
    const tiny = await makeTiny({ arch: name, out: dir, seed: 7, dtype: 'f32' });
    expect(tiny.config.model_type).toBe(name);

    // inspect: the check passes and prints the entry's summary
    const report = await checkCheckpoint(nodeDirectory(dir));
    await report.checkpoint.close();
    expect(report.problems).toEqual([]);
    const text = formatReport(dir, report);
    expect(text).toContain(`model_type ${name}`);
    for (const line of f.describeConfig(report.config)) expect(text).toContain(line);
    expect(text).toMatch(/^OK: every tensor is present/m);

    // dump: the common contract plus the family's own points
    const m = await (await openModel(nodeDirectory(dir))).load(gpu);
    expect([m.family, m.capabilities]).toEqual([name, f.capabilities]);
    const chat = f.capabilities.chatTemplate;
    const prompt = { prompt: m.promptFor(DEFAULT_PROMPT, chat), chat };
    const image = readImageFile(IMAGE);
    const x = m.prepare(prompt, image);
    const L = m.lm.num_hidden_layers;
    const d = m.lm.hidden_size;
    const seq = x.ids.length;
    const dump = await dumpActivations(gpu, m, x);
    for (let l = 0; l <= L; l++) expect(dump.get(`hidden_states.${l}`)?.shape).toEqual([seq, d]);
    expect(dump.get('logits')?.shape).toEqual([seq, m.lm.vocab_size]);
    for (const [dumpName] of f.dumpPoints(report.config)) expect(dump.has(dumpName), dumpName).toBe(true);
    for (const [k, t] of dump) expect(t.data.every((v) => Number.isFinite(v)), k).toBe(true);

    // analyze: the metrics have the model's sizes and are finite
    const item = { id: 'one', image: 'one/000000000802.jpg', captions: [] };
    const opts = { prompt, dropBos: false, topk: 3, smooth: 1, padToSquare: false };
    const metrics = (await analyzeImage(gpu, m, item, image, opts)) as Record<string, any>;
    expect(metrics.model_family).toBe(name);
    expect(metrics.contextualization.inter).toHaveLength(L + 1);
    expect(metrics.norm_attention.layer).toHaveLength(L);
    expect(metrics.norm_attention.layer[0]).toHaveLength(seq);
    expect(metrics.logit_lens.layers).toHaveLength(L + 1);
    expect(allFinite(metrics)).toBe(true);

    // knockout: the sweep's cached re-runs (fromLayer, KV cache) equal full forwards with the mask in the window
    const flows = resolveFlows(['last<-image'], x);
    const window = 2;
    const sweep = await knockoutSweep(gpu, m, x, flows, { window });
    const r = sweep.flows['last<-image'];
    expect(r.centres).toEqual(Array.from({ length: L }, (_, l) => l));
    const mask = knockoutMask(gpu, seq, flows[0]);
    for (const c of r.centres) {
      const [lo, hi] = layerWindow(c, window, L);
      const full = await runLast(gpu, m.languageModel, () => m.forward(gpu, x, { mask: (l) => (l >= lo && l <= hi ? mask : undefined) }));
      // same kernels on the same rows; only the summation order of the re-run's cached K/V can differ
      expect(Math.abs(r.p[c] - full.p(sweep.answer.id)) / sweep.answer.p_base, `centre ${c}`).toBeLessThan(1e-4);
    }
    gpu.release(mask);

    // the page session: the folder and the image as Blobs, through the page's own module
    const paths = (readdirSync(dir, { recursive: true }) as string[]).filter((p) => statSync(join(dir, p)).isFile());
    const folder = new Map(paths.map((p) => [p.split('\\').join('/'), new Blob([readFileSync(join(dir, p))])]));
    const picked = await openPicked(blobDirectory(folder, name), { chat, dropBos: false, topk: 3, smooth: 1, padToSquare: false, precision: 'f32' });
    const pm = await loadPicked(gpu, picked.files, 'f32', () => {});
    const data = await pickedData({ name: 'one', files: new Map([['000000000802.jpg', new Blob([readFileSync(IMAGE)])]]) });
    const page = await analyzeItems(gpu, pm, data, picked.analyze, () => {});
    expect(page.failures).toEqual([]);
    const pageMetrics = page.results[0].metrics as Record<string, any>;
    // the same prompt, weights and kernels as `analyze`: the same numbers
    expect(pageMetrics.tokens.ids).toEqual(metrics.tokens.ids);
    expect(pageMetrics.contextualization).toEqual(metrics.contextualization);
    expect(pageMetrics.norm_attention).toEqual(metrics.norm_attention);
    expect(pageMetrics.logit_lens).toEqual(metrics.logit_lens);
  }, 600_000);
});
