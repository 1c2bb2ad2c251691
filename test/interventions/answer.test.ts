/**
 * `--answer` / `--answers` (src/pipeline/items.ts) on the real llava-1.5 tokenizer: digits are
 * words, tokenised like any answer ("2" is not token id 2, `</s>`'s neighbour); a token id
 * needs the explicit `id:N`. LLaMA writes a number as "▁" then its digits, so "2" is two
 * tokens whose first says nothing about the answer: refused, naming the id to give instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VlmFiles } from '../../src/models/vlm.ts';
import { parseAnswer } from '../../src/pipeline/items.ts';
import { parseAnswerPair } from '../../src/pipeline/patch.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { openDir } from '../helpers/model.ts';

const work = mkdtempSync(join(tmpdir(), 'phaselens-answer-'));
let f: VlmFiles;

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: join(work, 'llava'), seed: 2 });
  f = await openDir(join(work, 'llava'));
});
afterAll(async () => {
  await f?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('answers', () => {
  const one = (text: string) => {
    const ids = f.tokenizer!.encode(text, { addBos: false, addEos: false });
    expect(ids).toHaveLength(1);
    return ids[0];
  };

  it('a word is its one token', () => {
    expect(parseAnswer(f, 'two', false)).toBe(one('two'));
    expect(f.tokenizer!.idToToken(parseAnswer(f, 'cat', false))).toBe('▁cat');
  });

  it('digits are words, not token ids: "2" is "▁" "2", refused with the id to give', () => {
    const digit = f.tokenizer!.encode('2', { addBos: false, addEos: false });
    expect(digit.map((i) => f.tokenizer!.idToToken(i))).toEqual(['▁', '2']);
    for (const firstToken of [false, true]) {
      expect(() => parseAnswer(f, '2', firstToken)).toThrow(new RegExp(`--answer "2" is 2 tokens \\("▁" "2"\\).*word boundary.*id:${digit[1]}`));
      expect(() => parseAnswer(f, '12', firstToken)).toThrow(/is 3 tokens/);
    }
    expect(() => parseAnswerPair(f, '2,3', false)).toThrow(/--answers "2" is 2 tokens/);
  });

  it('a token id is id:N, checked against the vocabulary', () => {
    expect(parseAnswer(f, 'id:2', false)).toBe(2);
    expect(parseAnswer(f, ' id:29906 ', false)).toBe(29906);
    expect(parseAnswerPair(f, 'id:29906,id:29941', false).ids).toEqual([29906, 29941]);
    expect(() => parseAnswer(f, `id:${f.lm.vocab_size}`, false)).toThrow(new RegExp(`outside the vocabulary \\(0\\.\\.${f.lm.vocab_size - 1}\\)`));
    for (const bad of ['id:', 'id:x', 'id:-1', 'id:1.5']) expect(() => parseAnswer(f, bad, false)).toThrow(/id:N/);
  });

  it('several tokens: refused, or the first with firstToken', () => {
    expect(() => parseAnswer(f, 'couch potato', false)).toThrow(/is \d+ tokens.*--first-token/);
    expect(parseAnswer(f, 'couch potato', true)).toBe(f.tokenizer!.encode('couch potato', { addBos: false, addEos: false })[0]);
  });
});
