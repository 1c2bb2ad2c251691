/**
 * Token groups on real prepared inputs of both families (the real LLaVA-1.5 tokenizer and
 * chat template, InstructBLIP's `</s>` BOS after the queries): each group checked against
 * positions worked out here from the sequence layout, the question span decoded back to
 * the question text, patch boxes on LLaVA's grid, and every bad spec a clear error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { resolveGroup } from '../../src/interventions/groups.ts';
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

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: join(work, 'l'), seed: 1 });
  await makeTiny({ arch: 'instructblip', out: join(work, 'b'), seed: 1 });
  llava = await openDir(join(work, 'l'));
  blip = await openDir(join(work, 'b'));
  lx = prepareFile(llava, { prompt: QUESTION, chat: true }, IMAGE);
  bx = prepareFile(blip, { prompt: QUESTION }, IMAGE);
});
afterAll(async () => {
  await llava.close();
  await blip.close();
  rmSync(work, { recursive: true, force: true });
});

const g = (spec: string, x: VlmInput) => resolveGroup(spec, x.groups, x.ids.length);
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
