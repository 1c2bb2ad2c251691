/**
 * `phaselens gate` report and `phaselens gate-report` through the real CLI, on real runs of
 * tiny checkpoints (make-tiny's LLaVA and Chameleon, and constructed-gate's hand-set gate):
 * - a gate run writes report.html and its figures (separation, attention share, overlap);
 * - the side-by-side report's JSON holds exactly the numbers of the gate, knockout (--layers
 *   all, --from-last) and patch --data runs' aggregate.json (copied, not recomputed), the
 *   constructed gate's end-of-image share ≥ 0.9 where the others have none;
 * - the HTML names each run's model, family, dtype and phaselens version, and inlines every
 *   figure it writes;
 * - folders that are not finished runs of the kind given (another command's, unfinished,
 *   an older format, another model, a window-mode knockout, a one-pair patch) are refused with a one-line
 *   error, no stack trace, nothing written.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeConstructedGate } from '../../weights-tools/constructed-gate.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const FIX = join(import.meta.dirname, '../fixtures/images');
const CATS = '000000039769.png';
const OTHER = '000000011813.jpg';
const THIRD = '000000000802.jpg';
const VERSION = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')).version;
const work = mkdtempSync(join(tmpdir(), 'phaselens-gate-report-'));
const images = join(work, 'images');
const at = (...p: string[]) => join(work, ...p);

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, err: r.stderr, out: r.stdout };
}

function ok(...args: string[]) {
  const r = cli(...args);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.code, r.err).toBe(0);
  return r;
}

const json = (...p: string[]) => JSON.parse(readFileSync(at(...p), 'utf8'));

beforeAll(async () => {
  mkdirSync(images);
  for (const f of [CATS, OTHER]) copyFileSync(join(FIX, f), join(images, f));
  copyFileSync(join(FIX, '../coco_mini/val2017', THIRD), join(images, THIRD));
  await makeTiny({ arch: 'llava', out: at('llava'), seed: 4 });
  await makeTiny({ arch: 'chameleon', out: at('chameleon'), seed: 4 });
  await makeConstructedGate(at('constructed'));
  // each image twice under its own label: k = 1 finds the twin, so the overlap is 1
  const lines = [CATS, OTHER].flatMap((image, i) => ['a', 'b'].map((c) => JSON.stringify({ image, id: `img${i}-${c}`, label: `class${i}` })));
  writeFileSync(at('labels.jsonl'), lines.join('\n') + '\n');
  writeFileSync(at('steer.jsonl'), [[CATS, 'cat'], [OTHER, 'dog'], [THIRD, 'dog']].map(([image, label]) => JSON.stringify({ image, label })).join('\n') + '\n');
  writeFileSync(at('vqa.jsonl'), [[CATS, 'What animal is this?', ['cat']], [OTHER, 'What is shown?', ['dog']]].map(([image, question, answers]) => JSON.stringify({ image, question, answers })).join('\n') + '\n');
  const folder = `folder:${images}`;
  const vqa = `vqa:${at('vqa.jsonl')}:${images}`;
  const steer = `labels:${at('steer.jsonl')}:${images}`;
  ok('gate', '--model', at('llava'), '--data', `labels:${at('labels.jsonl')}:${images}`, '--prompt', '<image>\nWhat animal is this?', '--k', '1', '--bins', '512', '--out', at('g-llava'));
  ok('gate', '--model', at('chameleon'), '--data', folder, '--bins', '512', '--out', at('g-chameleon'));
  ok('gate', '--model', at('constructed'), '--data', folder, '--bins', '512', '--out', at('g-constructed'));
  ok('knockout', '--model', at('llava'), '--data', vqa, '--chat', '--flow', 'text<-last-image', '--flow', 'text<-random-image', '--flow', 'text<-image', '--from-last', '--generate', '2', '--out', at('k-llava'));
  ok('knockout', '--model', at('chameleon'), '--data', vqa, '--flow', 'gate', '--layers', 'all', '--generate', '2', '--out', at('k-chameleon'));
  ok('patch', '--model', at('llava'), '--data', steer, '--chat', '--token', 'last-image', '--from-layer-on', '--out', at('s-llava'));
  ok('patch', '--model', at('chameleon'), '--data', steer, '--token', 'end-of-image', '--every', '2', '--out', at('s-chameleon'));
  // one image pair: not the steering of a data set
  ok('patch', '--model', at('llava'), '--source', join(images, CATS), '--target', join(images, OTHER), '--prompt', 'What animal is this?', '--chat', '--token', 'image', '--answers', 'cat,dog', '--out', at('p-llava'));
}, 600_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('gate run report', () => {
  it('report.html inlines the separation, attention-share and (labels) overlap figures, written to figures/', () => {
    const html = readFileSync(at('g-llava', 'report.html'), 'utf8');
    expect(readdirSync(at('g-llava', 'figures')).sort()).toEqual(['gate_attention_share.svg', 'gate_overlap.svg', 'gate_separation.svg']);
    expect(readdirSync(at('g-chameleon', 'figures')).sort()).toEqual(['gate_attention_share.svg', 'gate_separation.svg']);
    for (const f of ['gate_separation.svg', 'gate_attention_share.svg', 'gate_overlap.svg']) expect(html).toContain(`data-file="figures/${f}"`);
    // one line per position the model has, and the overlap of the one candidate with chance
    const share = readFileSync(at('g-chameleon', 'figures', 'gate_attention_share.svg'), 'utf8');
    expect([...share.matchAll(/class="series" data-name="([^"]+)"/g)].map((m) => m[1])).toEqual(Object.keys(json('g-chameleon', 'aggregate.json').attention.groups));
    const overlap = readFileSync(at('g-llava', 'figures', 'gate_overlap.svg'), 'utf8');
    expect([...overlap.matchAll(/class="series" data-name="([^"]+)"/g)].map((m) => m[1])).toEqual(['last-image', 'chance']);
    const agg = json('g-llava', 'aggregate.json');
    expect(agg.run).toEqual({ data: `labels:${at('labels.jsonl')}:${images}`, failed: 0, missing: 0 });
    expect(agg.separation.resolution).toBe(1 / 512);
    expect(html).toContain(agg.model);
  });
});

describe('gate-report side by side', () => {
  const out = at('report');
  let j: { runs: Record<string, any>[] };
  let html: string;

  beforeAll(() => {
    const r = ok('gate-report', '--run', `llava=${at('g-llava')}`, '--run', `chameleon=${at('g-chameleon')}`, '--run', `constructed=${at('g-constructed')}`,
      '--knockout', `llava=${at('k-llava')}`, '--knockout', `chameleon=${at('k-chameleon')}`, '--patch', `llava=${at('s-llava')}`, '--patch', `chameleon=${at('s-chameleon')}`, '--out', out);
    expect(r.out).toMatch(/report: .*gate-report\.html/);
    j = JSON.parse(readFileSync(join(out, 'gate-report.json'), 'utf8'));
    html = readFileSync(join(out, 'gate-report.html'), 'utf8');
  });

  it('the JSON holds the runs\' aggregate numbers exactly', () => {
    expect(j.runs.map((r) => r.name)).toEqual(['llava', 'chameleon', 'constructed']);
    for (const r of j.runs) {
      const agg = json(`g-${r.name}`, 'aggregate.json');
      expect(r.model).toBe(agg.model);
      expect(r.model_family).toBe(agg.model_family);
      expect(r.phaselens_version).toBe(agg.phaselens_version);
      expect(r.dtype).toEqual(agg.options.weight_dtypes);
      expect(r.n_items).toBe(agg.n_items);
      expect(r.separation).toEqual(agg.separation);
      expect(Object.keys(r.attention_share)).toEqual(Object.keys(agg.attention.groups));
      for (const [g, v] of Object.entries(agg.attention.groups)) expect(r.attention_share[g]).toEqual((v as { share: unknown }).share);
      expect(r.neighbourhood_overlap).toEqual(agg.neighbourhood_overlap);
    }
    expect(j.runs[0].neighbourhood_overlap.positions['last-image']).toEqual([1, 1, 1, 1]);
  });

  it('the constructed gate puts ≥ 0.9 of the share on end-of-image; LLaVA has no such position', () => {
    const [llava, , constructed] = j.runs;
    for (const s of constructed.attention_share['end-of-image']) expect(s.mean).toBeGreaterThanOrEqual(0.9);
    expect(llava.attention_share['end-of-image']).toBeUndefined();
  });

  it('ablation: the knockout runs\' numbers, every flow in all layers, and the from-last curves', () => {
    const L = 3;
    for (const r of j.runs.slice(0, 2)) {
      const k = json(`k-${r.name}`, 'aggregate.json');
      const [a] = r.ablation;
      expect(a.mode).toBe(r.name === 'llava' ? 'from-last' : 'layers');
      expect(a.p_base).toEqual(k.p_base);
      expect(a.accuracy_base).toBe(k.vqa.accuracy_base);
      expect(a.rows.map((x: { flow: string }) => x.flow)).toEqual(Object.keys(k.flows));
      for (const x of a.rows) {
        const f = k.flows[x.flow];
        const i = f.window.findIndex((w: number[]) => w[0] === 0 && w[1] === L - 1);
        expect(x.layers).toEqual([0, L - 1]);
        expect([x.p, x.rel_change_pct, x.accuracy, x.agreement]).toEqual([f.p[i], f.rel_change_pct[i], f.accuracy[i], f.agreement[i]]);
      }
    }
    expect(j.runs[1].ablation[0].rows.map((x: { flow: string }) => x.flow)).toEqual(['text<-end-of-image', 'text<-last-image', 'text<-random-image', 'text<-image']);
    const k = json('k-llava', 'aggregate.json');
    for (const [flow, f] of Object.entries(j.runs[0].ablation[0].from_last) as [string, { first_layer: number[]; p: unknown; accuracy: unknown }][]) {
      expect(f.first_layer).toEqual([2, 1, 0]);
      expect(f.p).toEqual(k.flows[flow].p);
      expect(f.accuracy).toEqual(k.flows[flow].accuracy);
    }
    expect(j.runs[2].ablation).toEqual([]);
  });

  it('steering: the patch --data runs\' success, shift and logit difference per layer', () => {
    for (const r of j.runs.slice(0, 2)) {
      const p = json(`s-${r.name}`, 'aggregate.json');
      const [s] = r.steering;
      expect(s.per_layer).toEqual(p.per_layer);
      expect([s.n_items, s.n_steerable, s.site, s.token]).toEqual([p.n_items, p.n_steerable, p.site, p.options.token]);
    }
    expect(j.runs[1].steering[0].per_layer.map((x: { layer: number }) => x.layer)).toEqual([0, 2]);
    expect(j.runs[2].steering).toEqual([]);
  });

  it('the HTML names each run\'s model, family, dtype and version, and inlines every figure it writes', () => {
    for (const r of j.runs) {
      expect(html).toContain(`<th>${r.name}</th>`);
      expect(html).toContain(r.model);
      expect(html).toContain(r.model_family);
    }
    expect(html).toContain(`<td>phaselens_version</td><td>${VERSION}</td><td>${VERSION}</td><td>${VERSION}</td>`);
    expect(html).toContain(`<td>dtype</td>${"<td>[&quot;f32&quot;]</td>".repeat(3)}`);
    const files = readdirSync(join(out, 'figures')).sort();
    expect(files).toEqual(['ablation_from_last.llava.svg', 'gate_attention_share.chameleon.svg', 'gate_attention_share.constructed.svg', 'gate_attention_share.llava.svg', 'gate_overlap.llava.svg', 'gate_separation.svg', 'steering.chameleon.svg', 'steering.llava.svg']);
    for (const f of files) expect(html).toContain(`data-file="figures/${f}"`);
    // the separation figure has one line per run
    const sep = readFileSync(join(out, 'figures', 'gate_separation.svg'), 'utf8');
    expect([...sep.matchAll(/class="series" data-name="([^"]+)"/g)].map((m) => m[1])).toEqual(['llava', 'chameleon', 'constructed']);
    expect(html).toMatch(/<h2>Ablation<\/h2>/);
    expect(html).toMatch(/<h2>Steering<\/h2>/);
  });
});

describe('gate-report refusals', () => {
  function refused(msg: RegExp, ...args: string[]): void {
    const out = at('refused');
    const r = cli('gate-report', ...args, '--out', out);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(2);
    expect(existsSync(join(out, 'gate-report.html'))).toBe(false);
  }
  const both = (g = at('g-llava')) => ['--run', `llava=${g}`, '--run', `chameleon=${at('g-chameleon')}`];

  /** A copy of g-llava with its aggregate edited. */
  function edited(name: string, edit: (a: Record<string, any>) => void): string {
    const dir = at(name);
    cpSync(at('g-llava'), dir, { recursive: true });
    const a = json(name, 'aggregate.json');
    edit(a);
    writeFileSync(join(dir, 'aggregate.json'), JSON.stringify(a));
    return dir;
  }

  it('the command line: one run, NAME=DIR, a name twice, a --patch for no run', () => {
    refused(/give two or more --run NAME=DIR \(got 1\)/, '--run', `llava=${at('g-llava')}`);
    refused(/--run g-llava: give NAME=DIR/, '--run', 'g-llava', '--run', `c=${at('g-chameleon')}`);
    refused(/the name llava is given twice/, '--run', `llava=${at('g-llava')}`, '--run', `llava=${at('g-chameleon')}`);
    refused(/--patch x=.*: no --run named x \(runs: llava, chameleon\)/, ...both(), '--patch', `x=${at('s-llava')}`);
  });

  it('a missing folder, a folder of another command, an unfinished run', () => {
    refused(/--run llava=.*nowhere: no such folder/, ...both(at('nowhere')));
    refused(/--run llava=.*p-llava: a patch folder, not a gate run/, ...both(at('p-llava')));
    refused(/not an output folder of phaselens gate \(no aggregate.json\)/, ...both(images));
    const unfinished = at('unfinished');
    cpSync(at('g-llava'), unfinished, { recursive: true });
    rmSync(join(unfinished, 'aggregate.json'));
    refused(/not a finished run \(no aggregate.json\): re-run its command to finish it, or merge its shards/, ...both(unfinished));
    refused(/not a finished run: its aggregate was written with 1 item\(s\) missing/, ...both(edited('missing', (a) => (a.run.missing = 1))));
    // a knockout whose item lost its result after the aggregate was written
    const partial = at('ko-partial');
    cpSync(at('k-chameleon'), partial, { recursive: true });
    rmSync(join(partial, 'images', `${readdirSync(join(partial, 'images'))[0]}`));
    refused(/--knockout chameleon=.*ko-partial: not a finished run: 1 item\(s\) have no result \([\w-]+\); re-run its command/, ...both(), '--knockout', `chameleon=${partial}`);
    refused(/--patch llava=.*g-chameleon: the output of phaselens gate, not of patch/, ...both(), '--patch', `llava=${at('g-chameleon')}`);
    refused(/--knockout llava=.*s-llava: the output of phaselens patch, not of knockout/, ...both(), '--knockout', `llava=${at('s-llava')}`);
    refused(/--patch llava=.*p-llava: a patch of one image pair \(patch.json\); steering success is over a data set: patch --data SPEC/, ...both(), '--patch', `llava=${at('p-llava')}`);
  });

  it('an older format, a garbled aggregate, another model\'s patch', () => {
    refused(/aggregate.json of phaselens .* has no "run" \(an older format\); re-run its gate command/, ...both(edited('old', (a) => delete a.run)));
    refused(/has no "separation.resolution" \(an older format\)/, ...both(edited('old2', (a) => delete a.separation.resolution)));
    refused(/the output of phaselens knockout, not of gate/, ...both(edited('ko-like', (a) => { delete a.separation; a.flows = {}; })));
    const garbled = edited('garbled', () => {});
    writeFileSync(join(garbled, 'aggregate.json'), '{"separation": ');
    refused(/aggregate.json does not parse as JSON/, ...both(garbled));
    refused(/--patch chameleon=.*s-llava: a run of llava .*, but --run chameleon is of chameleon/, ...both(), '--patch', `chameleon=${at('s-llava')}`);
    refused(/--knockout llava=.*k-chameleon: a run of chameleon .*, but --run llava is of llava/, ...both(), '--knockout', `llava=${at('k-chameleon')}`);
  });

  it('a knockout folder that is not of the ablation modes', () => {
    const ko = at('ko-window');
    ok('knockout', '--model', at('llava'), '--data', `folder:${images}`, '--prompt', 'What animal is this?', '--chat', '--flow', 'last<-image', '--window', '3', '--limit', '1', '--out', ko);
    refused(/--run llava=.*ko-window: the output of phaselens knockout, not of gate/, ...both(ko));
    refused(/--knockout llava=.*ko-window: a knockout in the window mode .*; the ablation table needs one with --layers all or --from-last/, ...both(), '--knockout', `llava=${ko}`);
  });
});
