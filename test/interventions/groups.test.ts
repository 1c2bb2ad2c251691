/**
 * Token groups on real prepared inputs of every family (the real LLaVA-1.5 tokenizer and
 * chat template, InstructBLIP's `</s>` BOS after the queries, LLaVA-NeXT's image_newline
 * rows, Chameleon's <racm3:break> … <eoss>): each group checked against positions worked
 * out here from the sequence layout (the sentinels found by their token ids), the question
 * span decoded back to the question text, patch boxes on LLaVA's grid, random-image
 * redrawn here by its documented rule, and every bad spec a clear error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { resolveGroup } from '../../src/interventions/groups.ts';
import { mulberry32 } from '../../src/util/random.ts';
import type { VlmFiles, VlmInput } from '../../src/models/vlm.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { openDir, prepareFile } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const work = mkdtempSync(join(tmpdir(), 'phaselens-groups-'));
const QUESTION = 'What color is the couch?';
let llava: VlmFiles;
let blip: VlmFiles;
let lx: VlmInput;
let bx: VlmInput;
let next: VlmFiles;
let cham: VlmFiles;
let nx: VlmInput;
let cx: VlmInput;

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: join(work, 'l'), seed: 1 });
  await makeTiny({ arch: 'instructblip', out: join(work, 'b'), seed: 1 });
  llava = await openDir(join(work, 'l'));
  blip = await openDir(join(work, 'b'));
  lx = prepareFile(llava, { prompt: QUESTION, chat: true }, IMAGE);
  bx = prepareFile(blip, { prompt: QUESTION }, IMAGE);
  await makeTiny({ arch: 'llava_next', out: join(work, 'n'), seed: 1 });
  await makeTiny({ arch: 'chameleon', out: join(work, 'c'), seed: 1 });
  next = await openDir(join(work, 'n'));
  cham = await openDir(join(work, 'c'));
  nx = prepareFile(next, { prompt: QUESTION, chat: true }, IMAGE);
  cx = prepareFile(cham, { prompt: `<image>${QUESTION}` }, IMAGE);
});
afterAll(async () => {
  await llava.close();
  await blip.close();
  await next.close();
  await cham.close();
  rmSync(work, { recursive: true, force: true });
});

const g = (spec: string, x: VlmInput, draw?: { key: string; seed: number }) => resolveGroup(spec, x.groups, x.ids.length, draw);

/** random-image as README states it: index ⌊u·n⌋ of the internal image tokens, u = mulberry32(FNV-1a-32("<seed>:<key>")) first draw. */
function redraw(internal: number[], key: string, seed: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${key}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return internal[Math.floor(mulberry32(h)() * internal.length)];
}

/** random-image over many keys and two seeds: always the redrawn internal token, and not always the same one. */
function checkRandomImage(x: VlmInput, internal: number[]): void {
  const keys = Array.from({ length: 24 }, (_, i) => `item-${i}`);
  for (const seed of [0, 7]) {
    const got = keys.map((key) => g('random-image', x, { key, seed }));
    got.forEach((p, i) => expect(p).toEqual([redraw(internal, keys[i], seed)]));
    expect(new Set(got.map((p) => p[0])).size).toBeGreaterThan(4);
  }
  expect(keys.some((key) => g('random-image', x, { key, seed: 0 })[0] !== g('random-image', x, { key, seed: 7 })[0])).toBe(true);
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('token groups', () => {
  it('LLaVA chat prompt: <s> USER: <image 9 patches> \\n question ASSISTANT:', () => {
    const n = lx.ids.length;
    const [s, e] = lx.groups.image;
    expect(e - s).toBe(9);
    expect(g('image', lx)).toEqual(range(s, e));
    expect(g('bos', lx)).toEqual([0]);
    expect(g('last', lx)).toEqual([n - 1]);
    expect(llava.tokenizer!.decode(g('question', lx).map((i) => lx.ids[i]))).toBe(QUESTION);
    const q = new Set(g('question', lx));
    expect(g('template', lx)).toEqual(lx.groups.text.filter((i) => i !== 0 && !q.has(i)));
    expect(llava.tokenizer!.decode(g('template', lx).map((i) => lx.ids[i]))).toMatch(/^USER:\s+ASSISTANT:$/s);
    expect(g('text', lx)).toEqual([...range(0, s), ...range(e, n)]);
  });

  it('LLaVA patch boxes index the 3×3 grid row by row', () => {
    const s = lx.groups.image[0];
    expect(g('image[0:1,0:3]', lx)).toEqual([s, s + 1, s + 2]);
    expect(g('image[1:3,2:3]', lx)).toEqual([s + 5, s + 8]);
    expect(g('image[0:3,0:3]', lx)).toEqual(g('image', lx));
  });

  it('InstructBLIP: 8 queries, </s> BOS at 8, the instruction after it', () => {
    expect(g('image', bx)).toEqual(range(0, 8));
    expect(g('bos', bx)).toEqual([8]);
    expect(blip.tokenizer!.decode(g('question', bx).map((i) => bx.ids[i]))).toBe(QUESTION);
    expect(g('question', bx)).toEqual(range(9, bx.ids.length));
    expect(g('@3-5,9', bx)).toEqual([3, 4, 5, 9]);
  });

  it('Chameleon: BOS, <racm3:break>, the image tokens, <eoss>, the question, the separator', () => {
    const tok = cham.tokenizer!;
    const start = cx.ids.indexOf(tok.tokenId('<racm3:break>'));
    const end = cx.ids.indexOf(tok.tokenId('<eoss>'));
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start + 1);
    expect(g('start-of-image', cx)).toEqual([start]);
    expect(g('end-of-image', cx)).toEqual([end]);
    expect(g('image', cx)).toEqual(range(start + 1, end));
    expect(g('last-image', cx)).toEqual([end - 1]);
    expect(g('text', cx)).toEqual(range(0, cx.ids.length).filter((i) => i < start || i > end));
    checkRandomImage(cx, range(start + 1, end - 1));
    // the placeholders are the VQ latent grid row by row (8 × 8 for make-tiny's 16 px, 2 levels)
    expect(cx.groups.grids).toEqual([expect.objectContaining({ rows: 8, cols: 8, first: start + 1, stride: 8 })]);
    expect(g('patches', cx)).toEqual(range(start + 1, end));
    expect(g('image[1:2,6:8]', cx)).toEqual([start + 1 + 8 + 6, start + 1 + 8 + 7]);
  });

  it('LLaVA, LLaVA-NeXT, InstructBLIP: last-image and random-image; no start- or end-of-image token', () => {
    const [s, e] = lx.groups.image;
    expect(g('last-image', lx)).toEqual([e - 1]);
    checkRandomImage(lx, range(s, e - 1));
    expect(g('last-image', bx)).toEqual([7]);
    checkRandomImage(bx, range(0, 7));
    // LLaVA-NeXT: the visual span ends with an image_newline, which is no image token
    const [ns, ne] = nx.groups.image;
    const newline = new Set(nx.groups.newlines);
    expect(newline.has(ne - 1)).toBe(true);
    const tokens = range(ns, ne).filter((i) => !newline.has(i));
    expect(g('last-image', nx)).toEqual([tokens.at(-1)]);
    checkRandomImage(nx, tokens.slice(0, -1));
    for (const x of [lx, nx, bx]) {
      for (const spec of ['end-of-image', 'start-of-image']) {
        expect(() => g(spec, x), spec).toThrow(UserError);
        expect(() => g(spec, x), spec).toThrow(new RegExp(`no ${spec} token.*its groups: image, .*last-image, random-image`));
      }
    }
  });

  it('bad or empty groups are errors that say why', () => {
    const bad: [string, VlmInput, RegExp][] = [
      ['imgae', lx, /unknown token group "imgae".*known: image/],
      [`@${lx.ids.length}`, lx, /past the sequence/],
      ['@5-3', lx, /runs backwards/],
      ['@x', lx, /not a position/],
      ['image[0:4,0:1]', lx, /patch grid is 3×3/],
      ['image[0:1,0:1]', bx, /no patch grid/],
      ['image[1:1,0:3]', lx, /empty.*no rows or no columns/],
      ['template', bx, /empty/], // InstructBLIP has no template around the instruction
    ];
    for (const [spec, x, msg] of bad) {
      expect(() => g(spec, x), spec).toThrow(UserError);
      expect(() => g(spec, x), spec).toThrow(msg);
    }
    const ids = prepareFile(blip, { inputIds: '2,1724,338', qformerInputIds: '101,102' }, IMAGE);
    expect(() => g('question', ids)).toThrow(/only for a text prompt/);
  });
});
