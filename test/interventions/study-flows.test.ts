/**
 * The information-flow study's setting: `--flow study` (its six flows), window 9, and a
 * `gqa:` data set (question, answer, object box, subset) whose knockout tables split by
 * subset. On a tiny LLaVA-NeXT (make-tiny) through the `knockout` pipeline itself: every
 * item gets the six flows; last<-last (the last query's edge to itself) equals a full
 * forward with that one mask entry in the window; the per-subset aggregate equals the mean
 * of its items' own results; the loader refuses a malformed or missing box with its line.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadData, parseDataSpec } from '../../src/data/spec.ts';
import { runLast } from '../../src/interventions/answer.ts';
import { expandFlows, knockoutMask, layerWindow, STUDY_FLOWS } from '../../src/interventions/knockout.ts';
import type { Vlm } from '../../src/models/vlm.ts';
import { prepareItem } from '../../src/pipeline/items.ts';
import { checkKnockout, knockout, resolveFlows, type KnockoutAggregate } from '../../src/pipeline/knockout.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';

const FIX = join(import.meta.dirname, '../fixtures/images');
let tmp: string;
let m: Vlm;
const lines = [
  { image: '000000039769.png', question: 'Is the cat black?', answer: 'yes', box: [10, 8, 140, 130], subset: 'ChooseAttr' },
  { image: '000000011813.jpg', question: 'What is on the table?', answer: 'food', box: [0, 0, 300, 200], subset: 'QueryAttr' },
  { image: '000000039769.png', question: 'Is the remote red?', answer: 'no', box: [200, 200, 400, 300], subset: 'ChooseAttr' },
];
const write = (name: string, rows: unknown[]) => {
  writeFileSync(join(tmp, name), rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return `gqa:${join(tmp, name)}:${FIX}`;
};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'phaselens-study-'));
  await makeTiny({ arch: 'llava_next', out: join(tmp, 'next'), seed: 4, dtype: 'f32' });
  m = await loadDir(await getGpu(), join(tmp, 'next'));
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('gqa: data set', () => {
  it('reads question, answer, box and subset', () => {
    const spec = write('q.jsonl', lines);
    expect(parseDataSpec(spec).kind).toBe('gqa');
    const items = loadData(spec);
    expect(items.map((i) => [i.id, i.prompt, i.answers, i.box, i.meta.subset])).toEqual([
      ['000000039769-q1', 'Is the cat black?', ['yes'], [10, 8, 140, 130], 'ChooseAttr'],
      ['000000011813-q2', 'What is on the table?', ['food'], [0, 0, 300, 200], 'QueryAttr'],
      ['000000039769-q3', 'Is the remote red?', ['no'], [200, 200, 400, 300], 'ChooseAttr'],
    ]);
  });

  it('refuses a malformed or missing box, and a bad answer, with the line', () => {
    const file = join(tmp, 'bad.jsonl');
    expect(() => loadData(write('bad.jsonl', [lines[0], '', { ...lines[1], box: [5, 5, 2, 9] }]))).toThrow(`${file}:3: "box" [5,5,2,9] is empty`);
    expect(() => loadData(write('bad.jsonl', [lines[0], { ...lines[1], box: '1,2,3' }]))).toThrow(`${file}:2: "box" must be x0,y0,x1,y1`);
    expect(() => loadData(write('bad.jsonl', [{ ...lines[0], box: undefined }]))).toThrow(`${file}:1: "box" is missing`);
    expect(() => loadData(write('bad.jsonl', [{ ...lines[0], answer: ['yes'] }]))).toThrow(`${file}:1: "answer" must be a non-empty string`);
    expect(() => loadData(write('bad.jsonl', [{ ...lines[0], subset: 3 }]))).toThrow(`${file}:1: "subset" must be a non-empty string`);
  });
});

describe('--flow study', () => {
  it('expands to the six flows in place; a group knocked out from itself may not hold position 0', () => {
    expect(expandFlows(['study'])).toEqual(['question<-image', 'last<-image', 'last<-question', 'last<-last', 'question<-object', 'question<-image-object']);
    expect(expandFlows(['bos<-image', 'study', 'last<-image'])).toEqual(['bos<-image', ...STUDY_FLOWS]);
    const x = prepareItem(m, loadData(write('q.jsonl', lines))[0], { chat: true }, false);
    expect(() => resolveFlows(['@0-2<-@0-2'], x)).toThrow('--flow @0-2<-@0-2: the group holds position 0');
    expect(() => resolveFlows(['text<-last'], x)).toThrow(/overlap/);
  });

  it('runs through the knockout pipeline on a gqa data set, with per-subset tables', async () => {
    const gpu = await getGpu();
    const data = write('q.jsonl', lines);
    const items = loadData(data);
    const out = join(tmp, 'out');
    const run = { out, data, prompt: { chat: true }, padToSquare: false, flows: expandFlows(['study']), window: 9, firstToken: false };
    checkKnockout(m, run, items[0]);
    await knockout(gpu, m, items, run);
    const results = items.map((i) => JSON.parse(readFileSync(join(out, 'images', `${i.id}.json`), 'utf8')));
    const L = m.lm.num_hidden_layers;
    for (const r of results) {
      expect(Object.keys(r.flows)).toEqual(STUDY_FLOWS);
      expect(r.options.window).toBe(9);
      for (const f of Object.values(r.flows) as { p: number[]; window: number[][] }[]) {
        expect(f.p.every(Number.isFinite)).toBe(true);
        expect(f.window[0]).toEqual(layerWindow(0, 9, L));
      }
    }
    expect(results.map((r) => r.subset)).toEqual(['ChooseAttr', 'QueryAttr', 'ChooseAttr']);

    // last<-last: one mask entry, the last query's key to itself, against full masked forwards
    const x = prepareItem(m, items[1], { chat: true }, false);
    const [flow] = resolveFlows(['last<-last'], x);
    expect(flow.dst).toEqual([x.ids.length - 1]);
    const mask = knockoutMask(gpu, x.ids.length, flow);
    const r = results[1].flows['last<-last'];
    let moved = 0;
    for (const c of r.centres as number[]) {
      const [lo, hi] = layerWindow(c, 9, L);
      const full = await runLast(gpu, m.languageModel, () => m.forward(gpu, x, { mask: (l) => (l >= lo && l <= hi ? mask : undefined) }));
      const p = full.p(results[1].answer.id);
      expect(Math.abs(r.p[c] - p) / results[1].answer.p_base, `centre ${c}`).toBeLessThan(1e-4);
      moved = Math.max(moved, Math.abs(p - results[1].answer.p_base));
    }
    gpu.release(mask);
    expect(moved / results[1].answer.p_base).toBeGreaterThan(1e-3);

    // per-subset aggregate: the mean of that subset's items
    const agg = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8')) as KnockoutAggregate;
    expect(Object.keys(agg.subsets!)).toEqual(['ChooseAttr', 'QueryAttr']);
    expect(agg.subsets!.ChooseAttr.n_items).toBe(2);
    for (const name of STUDY_FLOWS) {
      const want = (results[0].flows[name].rel_change_pct[1] + results[2].flows[name].rel_change_pct[1]) / 2;
      expect(agg.subsets!.ChooseAttr.flows[name].rel_change_pct[1].mean).toBeCloseTo(want, 9);
      expect(agg.subsets!.QueryAttr.flows[name].rel_change_pct[1].mean).toBeCloseTo(results[1].flows[name].rel_change_pct[1], 9);
    }
    const csv = readFileSync(join(out, 'aggregate_by_subset.csv'), 'utf8').trim().split('\n');
    expect(csv.length).toBe(1 + 2 * STUDY_FLOWS.length * L);
    expect(csv[1].startsWith('"ChooseAttr",2,"question<-image",0,')).toBe(true);
    expect(existsSync(join(out, 'figures', 'knockout_rel_change.ChooseAttr.svg'))).toBe(true);
  }, 300_000);
});
