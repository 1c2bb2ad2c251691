/**
 * `phaselens gate` report and `phaselens gate-report` through the real CLI, on real runs of
 * tiny checkpoints (make-tiny's LLaVA and Chameleon, and constructed-gate's hand-set gate):
 * - a gate run writes report.html and its figures (separation, attention share, overlap);
 * - the side-by-side report's JSON holds exactly the numbers of the runs' aggregate.json and
 *   patch.json (copied, not recomputed), steering success as defined in the README, the
 *   constructed gate's end-of-image share ≥ 0.9 where the others have none;
 * - the HTML names each run's model, family, dtype and phaselens version, and inlines every
 *   figure it writes;
 * - folders that are not finished runs of the kind given (another command's, unfinished,
 *   an older format, another model, a window-mode knockout) are refused with a one-line
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
  await makeTiny({ arch: 'llava', out: at('llava'), seed: 4 });
  await makeTiny({ arch: 'chameleon', out: at('chameleon'), seed: 4 });
  await makeConstructedGate(at('constructed'));
  // each image twice under its own label: k = 1 finds the twin, so the overlap is 1
  const lines = [CATS, OTHER].flatMap((image, i) => ['a', 'b'].map((c) => JSON.stringify({ image, id: `img${i}-${c}`, label: `class${i}` })));
  writeFileSync(at('labels.jsonl'), lines.join('\n') + '\n');
  ok('gate', '--model', at('llava'), '--data', `labels:${at('labels.jsonl')}:${images}`, '--prompt', '<image>\nWhat animal is this?', '--k', '1', '--bins', '512', '--out', at('g-llava'));
  ok('gate', '--model', at('chameleon'), '--data', `folder:${images}`, '--bins', '512', '--out', at('g-chameleon'));
  ok('gate', '--model', at('constructed'), '--data', `folder:${images}`, '--bins', '512', '--out', at('g-constructed'));
  ok('patch', '--model', at('llava'), '--source', join(images, CATS), '--target', join(images, OTHER), '--prompt', 'What animal is this?', '--chat', '--token', 'image', '--answers', 'cat,dog', '--out', at('p-llava'));
  ok('patch', '--model', at('chameleon'), '--source', join(images, CATS), '--target', join(images, OTHER), '--prompt', 'What animal is this?<image>', '--token', 'image', '--answers', 'cat,dog', '--out', at('p-chameleon'));
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
      '--patch', `llava=${at('p-llava')}`, '--patch', `chameleon=${at('p-chameleon')}`, '--out', out);
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

  it('steering: the patch runs\' numbers, success where the top answer became the source run\'s', () => {
    for (const r of j.runs.slice(0, 2)) {
      const p = json(`p-${r.name}`, 'patch.json');
      const [s] = r.steering;
      expect(s.base_target).toEqual(p.base_target);
      expect(s.base_source).toEqual(p.base_source);
      expect(s.per_layer.map((x: { layer: number; logit_diff: number }) => [x.layer, x.logit_diff])).toEqual(p.per_layer.map((x: { layer: number; logit_diff: number }) => [x.layer, x.logit_diff]));
      p.per_layer.forEach((x: { top_answer: { id: number }; logit_diff: number }, i: number) => {
        expect(s.per_layer[i].success).toBe(x.top_answer.id === p.base_source.top_answer.id);
        expect(s.per_layer[i].shift).toBeCloseTo((x.logit_diff - p.base_target.logit_diff) / (p.base_source.logit_diff - p.base_target.logit_diff), 12);
      });
      // patching every image row at layer 0 reproduces the source run (only those rows differ)
      expect(s.per_layer[0].shift).toBeCloseTo(1, 12);
      expect(s.per_layer[0].success).toBe(true);
    }
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
    expect(files).toEqual(['gate_attention_share.chameleon.svg', 'gate_attention_share.constructed.svg', 'gate_attention_share.llava.svg', 'gate_overlap.llava.svg', 'gate_separation.svg']);
    for (const f of files) expect(html).toContain(`data-file="figures/${f}"`);
    // the separation figure has one line per run
    const sep = readFileSync(join(out, 'figures', 'gate_separation.svg'), 'utf8');
    expect([...sep.matchAll(/class="series" data-name="([^"]+)"/g)].map((m) => m[1])).toEqual(['llava', 'chameleon', 'constructed']);
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
    refused(/--patch x=.*: no --run named x \(runs: llava, chameleon\)/, ...both(), '--patch', `x=${at('p-llava')}`);
  });

  it('a missing folder, a folder of another command, an unfinished run', () => {
    refused(/--run llava=.*nowhere: no such folder/, ...both(at('nowhere')));
    refused(/--run llava=.*p-llava: a patch folder, not a gate run/, ...both(at('p-llava')));
    refused(/not an output folder of phaselens gate \(no aggregate.json\)/, ...both(images));
    const unfinished = at('unfinished');
    cpSync(at('g-llava'), unfinished, { recursive: true });
    rmSync(join(unfinished, 'aggregate.json'));
    refused(/not a finished run \(no aggregate.json\): re-run its command to finish it, or merge its shards/, ...both(unfinished));
    refused(/not a finished run: 1 item\(s\) have no result/, ...both(edited('missing', (a) => (a.run.missing = 1))));
    refused(/--patch llava=.*g-chameleon: not an output folder of phaselens patch \(no patch.json; it holds the output of phaselens gate\)/, ...both(), '--patch', `llava=${at('g-chameleon')}`);
  });

  it('an older format, a garbled aggregate, another model\'s patch', () => {
    refused(/aggregate.json of phaselens .* has no "run" \(an older format\); re-run its gate command/, ...both(edited('old', (a) => delete a.run)));
    refused(/has no "separation.resolution" \(an older format\)/, ...both(edited('old2', (a) => delete a.separation.resolution)));
    refused(/the output of phaselens knockout, not of gate/, ...both(edited('ko-like', (a) => { delete a.separation; a.flows = {}; })));
    const garbled = edited('garbled', () => {});
    writeFileSync(join(garbled, 'aggregate.json'), '{"separation": ');
    refused(/aggregate.json does not parse as JSON/, ...both(garbled));
    refused(/--patch chameleon=.*p-llava: a run of llava .*, but --run chameleon is of chameleon/, ...both(), '--patch', `chameleon=${at('p-llava')}`);
  });

  it('a knockout folder that is not of the ablation modes', () => {
    const ko = at('ko-window');
    ok('knockout', '--model', at('llava'), '--data', `folder:${images}`, '--prompt', 'What animal is this?', '--chat', '--flow', 'last<-image', '--window', '3', '--limit', '1', '--out', ko);
    refused(/--run llava=.*ko-window: the output of phaselens knockout, not of gate/, ...both(ko));
    refused(/--knockout llava=.*ko-window: .*window mode|--knockout llava=.*ko-window: .*has no "mode"/, ...both(), '--knockout', `llava=${ko}`);
  });
});
