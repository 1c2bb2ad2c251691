/**
 * Neighbourhood overlap in `phaselens gate` over a labelled data set (`labels:`), through
 * the real CLI on a tiny LLaVA:
 * - a known answer: each image listed twice (two ids, one label per image): with k = 1 the
 *   nearest neighbour is the other copy (cos 1), so the overlap is exactly 1 at every
 *   hidden state;
 * - one image listed four times under two labels: every row is the same, so there is no
 *   neighbourhood to measure: null, not the tie rule's number;
 * - against a reference computed here from `phaselens dump`'s hidden states (another
 *   command, the whole hidden state written out) at the same positions, with a plain
 *   cos = a·b / (‖a‖‖b‖) and the same tie rule: equal to 1e-12 (the same f32 rows);
 * - the host function on vectors whose neighbourhoods are known by hand;
 * - shards merged give the unsharded overlap; bad input refused before any weight loads.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chanceOverlap, neighbourhoodOverlap } from '../../src/analysis/neighbourhood-overlap.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { readRefSafetensors } from '../reference/pyref.ts';
import { cli, refused } from '../helpers/cli.ts';

const COCO = join(import.meta.dirname, '../fixtures/coco_mini/val2017');
const work = mkdtempSync(join(tmpdir(), 'phaselens-gate-overlap-'));
const images = join(work, 'images');
const model = join(work, 'llava');
const PROMPT = '<image>\nDescribe the image.';
let files: string[];


function ok(...args: string[]) {
  const r = cli(...args);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.code, r.err).toBe(0);
}


/** A labels file: every image twice (ids <stem>-a, <stem>-b), labelled by `label(i)`. */
function labels(name: string, label: (i: number) => string, lines: { image: string; id?: string; label: string }[] = files.flatMap((f, i) => ['a', 'b'].map((c) => ({ image: f, id: `${f.split('.')[0]}-${c}`, label: label(i) })))): string {
  const path = join(work, `${name}.jsonl`);
  writeFileSync(path, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return `labels:${path}:${images}`;
}

beforeAll(async () => {
  mkdirSync(images);
  files = readdirSync(COCO).filter((f) => f.endsWith('.jpg')).sort();
  for (const f of files) copyFileSync(join(COCO, f), join(images, f));
  await makeTiny({ arch: 'llava', out: model, seed: 9 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const aggregate = (out: string) => JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8'));

describe('neighbourhood overlap', () => {
  it('the host function on hand-made neighbourhoods', () => {
    // 1-D directions: a, a', b, b' with a ≈ a', b ≈ b', a ⟂ b
    const v = [[1, 0.1], [1, 0.2], [0.1, 1], [0.2, 1]].map((x) => Float32Array.from(x));
    expect(neighbourhoodOverlap(v, ['x', 'x', 'y', 'y'], 1)).toBe(1);
    expect(neighbourhoodOverlap(v, ['x', 'y', 'x', 'y'], 1)).toBe(0);
    // k = 2: the nearest is the twin, the second one of the other pair: 1/2 each
    expect(neighbourhoodOverlap(v, ['x', 'x', 'y', 'y'], 2)).toBe(0.5);
    expect(chanceOverlap(['x', 'x', 'y', 'y'])).toBeCloseTo(1 / 3, 15);
    expect(() => neighbourhoodOverlap(v, ['x', 'x', 'y', 'y'], 4)).toThrow(/k = 4 must be in 1..3/);
  });

  it('each image twice, labelled by image, k = 1: the overlap is 1 everywhere', () => {
    const out = join(work, 'twins');
    ok('gate', '--model', model, '--data', labels('twins', (i) => `img${i}`), '--prompt', PROMPT, '--k', '1', '--out', out);
    const o = aggregate(out).neighbourhood_overlap;
    expect(o.k).toBe(1);
    expect(o.n_samples).toBe(2 * files.length);
    expect(o.classes).toBe(files.length);
    expect(o.chance).toBeCloseTo(1 / (2 * files.length - 1), 15);
    expect(Object.keys(o.positions)).toEqual(['last-image']);
    expect(o.positions['last-image']).toEqual([1, 1, 1, 1]); // 3 layers: hidden states 0..3
  });

  it('one image under two labels: the rows are all the same, the overlap null', () => {
    const out = join(work, 'same');
    const lines = ['p', 'p', 'q', 'q'].map((label, i) => ({ image: files[0], id: `s${i}`, label }));
    ok('gate', '--model', model, '--data', labels('same', () => '', lines), '--prompt', PROMPT, '--k', '1', '--out', out);
    expect(aggregate(out).neighbourhood_overlap.positions['last-image']).toEqual([null, null, null, null]);
  });

  it('matches a reference from dump\'s hidden states; shards merged give the same', async () => {
    const LABEL = ['p', 'q', 'q', 'p', 'q', 'p'];
    const spec = labels('mixed', (i) => LABEL[i]);
    const out = join(work, 'mixed');
    ok('gate', '--model', model, '--data', spec, '--prompt', PROMPT, '--k', '3', '--out', out);
    const got = aggregate(out).neighbourhood_overlap;

    const first = JSON.parse(readFileSync(join(out, 'images', readdirSync(join(out, 'images'))[0]), 'utf8'));
    const states: Map<string, Float32Array | Int32Array | Uint8Array>[] = [];
    for (const f of files) {
      const dump = join(work, `${f}.safetensors`);
      ok('dump', '--model', model, '--image', join(images, f), '--prompt', PROMPT, '--out', dump);
      states.push(new Map([...(await readRefSafetensors(dump)).tensors].map(([k, t]) => [k, t.data])));
    }
    const d = 64;
    // sample order as the data set lists them: every image twice
    const samples = files.flatMap((_, i) => [i, i]);
    const sampleLabels = samples.map((i) => LABEL[i]);
    for (const [name, pos] of Object.entries(first.tokens.image_side as Record<string, number[]>)) {
      if (pos.length !== 1) continue;
      for (let l = 0; l <= 3; l++) {
        const row = (i: number) => Array.from((states[i].get(`hidden_states.${l}`) as Float32Array).subarray(pos[0] * d, (pos[0] + 1) * d));
        const vecs = samples.map(row);
        const cos = (a: number[], b: number[]) => {
          let ab = 0, aa = 0, bb = 0;
          for (let c = 0; c < d; c++) (ab += a[c] * b[c]), (aa += a[c] * a[c]), (bb += b[c] * b[c]);
          return ab / Math.sqrt(aa * bb);
        };
        let total = 0;
        vecs.forEach((a, i) => {
          const near = vecs.map((b, j) => ({ j, c: j === i ? -Infinity : cos(a, b) })).filter((x) => x.j !== i).sort((x, y) => y.c - x.c || x.j - y.j).slice(0, 3);
          total += near.filter((x) => sampleLabels[x.j] === sampleLabels[i]).length / 3;
        });
        expect(got.positions[name][l], `${name} hidden state ${l}`).toBeCloseTo(total / vecs.length, 12);
      }
    }
    expect(Object.keys(got.positions)).toEqual(['last-image']);

    const parts = ['1/2', '2/2'].map((sh, i) => {
      const o = join(work, `mixed-${i}`);
      ok('gate', '--model', model, '--data', spec, '--prompt', PROMPT, '--k', '3', '--out', o, '--shard', sh);
      return o;
    });
    ok('merge', ...parts, '--out', join(work, 'mixed-merged'));
    expect(aggregate(join(work, 'mixed-merged')).neighbourhood_overlap).toEqual(got);
  });

  it('refusals: k >= samples, a missing image, an empty label, one class, --k without labels', () => {
    const out = join(work, 'r');
    refused(cli('gate', '--model', model, '--data', labels('k', (i) => `c${i % 2}`), '--k', String(2 * files.length), '--out', out), new RegExp(`k = ${2 * files.length} needs more than k samples; this run has ${2 * files.length}`));
    refused(cli('gate', '--model', model, '--data', labels('missing', () => 'x', [{ image: 'nope.jpg', label: 'a' }, { image: files[0], label: 'b' }]), '--out', out), /:1: image .*nope\.jpg is missing/);
    refused(cli('gate', '--model', model, '--data', labels('empty', () => 'x', [{ image: files[0], label: '' }, { image: files[1], label: 'b' }]), '--out', out), /:1: "label" must be a non-empty string, found an empty string/);
    refused(cli('gate', '--model', model, '--data', labels('one', () => 'cat'), '--out', out), /but 1 class label\(s\) \(cat\): neighbourhood overlap needs at least two classes/);
    refused(cli('gate', '--model', model, '--data', `folder:${images}`, '--k', '3', '--out', out), /--k is the neighbourhood size of the overlap, which needs a labelled data set/);
  });
});
