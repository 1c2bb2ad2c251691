// Tokenizers and chat template (src/io/tokenizer.ts, src/io/chat.ts, src/io/model-files.ts).
//
// Independent references:
// - llama.cpp's SentencePiece test vectors for the LLaMA vocabulary (47 texts, ids without
//   BOS), test/fixtures/llama-tokenizer-tests/;
// - ids looked up directly in tokenizer.json's vocab / vocab.txt (no tokenizer code);
// - the LLaVA-1.5 prompt ids HF's LlavaProcessor gives (USER … <image> "▁" "\n" What …).
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { UserError } from '../../src/errors.ts';
import { LmTokenizer, parseInputIds, QformerTokenizer } from '../../src/io/tokenizer.ts';
import { applyChatTemplate, chatPrompt, normalizeTemplate, recogniseChatTemplate } from '../../src/io/chat.ts';
import { missingTokenizerReason, readChatTemplate, readQformerTokenizer, readTokenizer } from '../../src/io/model-files.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';

const loadTokenizer = async (d: string) => readTokenizer(nodeDirectory(d));
const loadChatTemplate = async (d: string) => readChatTemplate(nodeDirectory(d));
/** The BERT files laid out as in an InstructBLIP checkpoint (`qformer_tokenizer/`). */
function qformerCheckpoint(from: string): string {
  const d = mkdtempSync(join(tmpdir(), 'phaselens-qf-'));
  mkdirSync(join(d, 'qformer_tokenizer'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt']) writeFileSync(join(d, 'qformer_tokenizer', f), readFileSync(join(from, f)));
  return d;
}

const FIX = join(import.meta.dirname, '..', 'fixtures');
// The real llava-hf/llava-1.5-7b-hf tokenizer files and the BERT uncased tokenizer, kept
// once in the repo for the checkpoint generators (weights-tools/assets, see its PROVENANCE.md).
const LLAVA_DIR = join(import.meta.dirname, '..', '..', 'weights-tools', 'assets', 'llava-1.5-7b-hf');
if (!existsSync(join(LLAVA_DIR, 'tokenizer.json'))) throw new Error(`missing ${LLAVA_DIR}/tokenizer.json (the LLaVA-1.5 tokenizer the tests use)`);
const BERT_DIR = join(import.meta.dirname, '..', '..', 'weights-tools', 'assets', 'bert-base-uncased-tokenizer');

const llava = (await loadTokenizer(LLAVA_DIR))!;
const chatFromJson = (await loadChatTemplate(LLAVA_DIR))!;
const chatFromJinja = (await loadChatTemplate(join(FIX, 'llava-chat-template')))!;
const qformerFromJson = (await readQformerTokenizer(nodeDirectory(qformerCheckpoint(BERT_DIR))))!;
const vocab = (JSON.parse(readFileSync(join(LLAVA_DIR, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;

async function expectUserErrorAsync(f: () => Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  const err = await f().then(() => undefined, (e: unknown) => e);
  expect(err, 'expected a UserError').toBeInstanceOf(UserError);
  for (const p of parts) expect((err as Error).message).toMatch(p);
}

function expectUserError(f: () => unknown, ...parts: (string | RegExp)[]): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a UserError').toBeInstanceOf(UserError);
  for (const p of parts) expect((err as Error).message).toMatch(p);
}

describe('LLaMA tokenizer: llama.cpp SentencePiece vectors', () => {
  // .inp: each text followed by "\n__ggml_vocab_test__\n"; .out: one line of
  // space-separated ids per text, no BOS. Splitting .inp on the separator gives 47
  // elements, as llama.cpp's test-tokenizer-0 does: 46 texts and the empty fragment after the
  // last separator (expected: no ids; the empty text is also case 2).
  const inp = readFileSync(join(FIX, 'llama-tokenizer-tests', 'ggml-vocab-llama-spm.gguf.inp'), 'utf8').split('\n__ggml_vocab_test__\n');
  const out = readFileSync(join(FIX, 'llama-tokenizer-tests', 'ggml-vocab-llama-spm.gguf.out'), 'utf8').split('\n');

  it('has 47 cases', () => {
    expect(inp.length).toBe(47);
    expect(out.length).toBe(47); // 46 lines + the empty string after the final newline
    expect(inp[46]).toBe('');
    expect(out[46]).toBe('');
  });

  inp.forEach((text, i) => {
    it(`case ${i}: ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)}`, () => {
      const want = out[i].trim() === '' ? [] : out[i].trim().split(/\s+/).map(Number);
      expect(llava.encode(text, { addBos: false })).toEqual(want);
      // decode undoes encode (the decoder strips the "▁" the normalizer prepended)
      expect(llava.decode(want)).toBe(text);
    });
  });
});

describe('LLaMA tokenizer: special tokens, BOS, vocabulary', () => {
  it('reads the ids of the special tokens from tokenizer_config.json', () => {
    expect(llava.bosId).toBe(1);
    expect(llava.eosId).toBe(2);
    expect(llava.unkId).toBe(0);
    expect(llava.padId).toBe(32001);
    expect(llava.vocabSize).toBe(32002);
    expect(llava.tokenId('<image>')).toBe(32000);
    expect(llava.tokenId('<pad>')).toBe(32001);
    expect(llava.tokenId('▁Hello')).toBe(15043);
    expect(llava.tryTokenId('no-such-piece')).toBeUndefined();
    expectUserError(() => llava.tokenId('no-such-piece'), 'not in the vocabulary');
  });

  it('idToToken gives raw pieces with the ▁ marker', () => {
    expect(llava.idToToken(29871)).toBe('▁');
    expect(llava.idToToken(13)).toBe('<0x0A>');
    expect(llava.idToToken(15043)).toBe('▁Hello');
    expect(llava.idToToken(32000)).toBe('<image>');
    for (const [piece, id] of Object.entries(vocab).slice(0, 2000)) expect(llava.idToToken(id)).toBe(piece);
    expectUserError(() => llava.idToToken(32002), 'not in the vocabulary');
    expectUserError(() => llava.idToToken(-1), 'not in the vocabulary');
  });

  it('adds BOS by default (add_bos_token: true), not EOS (add_eos_token: false)', () => {
    expect(llava.addBosDefault).toBe(true);
    expect(llava.addEosDefault).toBe(false);
    expect(llava.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(llava.encode('Hello world', { addBos: false })).toEqual([15043, 3186]);
    expect(llava.encode('Hello world', { addEos: true })).toEqual([1, 15043, 3186, 2]);
    expect(llava.encode('')).toEqual([1]);
  });

  it('follows add_bos_token / add_eos_token of tokenizer_config.json', () => {
    const tj = JSON.parse(readFileSync(join(LLAVA_DIR, 'tokenizer.json'), 'utf8'));
    const cfg = JSON.parse(readFileSync(join(LLAVA_DIR, 'tokenizer_config.json'), 'utf8'));
    const noBos = new LmTokenizer(tj, { ...cfg, add_bos_token: false, add_eos_token: true }, 'x');
    expect(noBos.encode('Hello world')).toEqual([15043, 3186, 2]);
    expect(noBos.encode('Hello world', { addBos: true, addEos: false })).toEqual([1, 15043, 3186]);
    expectUserError(() => new LmTokenizer(tj, { ...cfg, add_bos_token: 'yes' }, 'cfgdir'), 'cfgdir', 'add_bos_token');
    expectUserError(() => new LmTokenizer(tj, { ...cfg, bos_token: '<nope>' }, 'cfgdir'), 'cfgdir', 'bos_token');
  });

  it('keeps <image> as one token inside the LLaVA-1.5 prompt, as HF LlavaProcessor does', () => {
    const prompt = 'USER: <image>\nWhat is this? ASSISTANT:';
    const ids = llava.encode(prompt);
    // From the vocabulary alone: each piece between added tokens is normalised on its own
    // (Prepend "▁", spaces → "▁"), so the text after <image> starts with "▁".
    const pieces = ['▁US', 'ER', ':', '▁', '<image>', '▁', '<0x0A>', 'What', '▁is', '▁this', '?', '▁A', 'SS', 'IST', 'ANT', ':'];
    const fromVocab = [1, ...pieces.map((p) => (p === '<image>' ? 32000 : vocab[p]))];
    expect(fromVocab.every((x) => Number.isInteger(x))).toBe(true);
    expect(ids).toEqual(fromVocab);
    // The ids HF's processor gives for this prompt (llava-hf model card / HF tests).
    expect(ids).toEqual([1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 445, 29973, 319, 1799, 9047, 13566, 29901]);
    // Same as encoding the pieces around <image> separately.
    expect(ids).toEqual([1, ...llava.encode('USER: ', { addBos: false }), 32000, ...llava.encode('\nWhat is this? ASSISTANT:', { addBos: false })]);
    expect(ids.filter((x) => x === 32000)).toHaveLength(1);
    expect(llava.tokenize(prompt)).toEqual(pieces);
  });

  it('handles repeated and adjacent added tokens', () => {
    expect(llava.encode('<image><image>x', { addBos: false })).toEqual([32000, 32000, vocab['▁x']]);
    expect(llava.encode('a<pad>b', { addBos: false })).toEqual([vocab['▁a'], 32001, vocab['▁b']]);
    expect(llava.encode('<s>hi</s>', { addBos: false })).toEqual([1, vocab['▁hi'], 2]);
  });

  it('decodes as HF does, optionally skipping special tokens', () => {
    expect(llava.decode([1, 15043, 3186, 2])).toBe('<s> Hello world</s>');
    expect(llava.decode([1, 15043, 3186, 2], { skipSpecialTokens: true })).toBe('Hello world');
    expect(llava.decode([243, 162, 155, 131])).toBe('😀'); // byte-fallback pieces fuse into UTF-8
    expect(llava.decode([])).toBe('');
    expect(llava.decode([1], { skipSpecialTokens: true })).toBe('');
    expectUserError(() => llava.decode([15043, 40000]), '40000', 'cannot decode');
  });

  it('a folder without tokenizer.json has no tokenizer, and the reason names the files and --input-ids', async () => {
    const d = mkdtempSync(join(tmpdir(), 'phaselens-tok-'));
    writeFileSync(join(d, 'tokenizer.model'), 'x');
    expect(await loadTokenizer(d)).toBeNull();
    const why = await missingTokenizerReason(nodeDirectory(d));
    for (const part of [d, 'no tokenizer.json', 'tokenizer.model', '--input-ids']) expect(why).toContain(part);
    writeFileSync(join(d, 'tokenizer.json'), '{ not json');
    await expectUserErrorAsync(() => loadTokenizer(d), 'tokenizer.json', 'not valid JSON');
    writeFileSync(join(d, 'tokenizer.json'), '{"version": "1.0"}');
    await expectUserErrorAsync(() => loadTokenizer(d), 'no "model"');
  });
});

describe('parseInputIds', () => {
  it('parses comma-separated ids', () => {
    expect(parseInputIds('1,3148,1001', 32064)).toEqual([1, 3148, 1001]);
    expect(parseInputIds(' 1 , 32000 ,32063 ', 32064)).toEqual([1, 32000, 32063]);
    expect(parseInputIds('0', 10)).toEqual([0]);
  });
  it('refuses malformed and out-of-range ids with the item named', () => {
    expectUserError(() => parseInputIds('', 32064), 'no token ids');
    expectUserError(() => parseInputIds('1,,2', 32064), 'item 2', 'not a non-negative integer');
    expectUserError(() => parseInputIds('1,-5', 32064), 'item 2', '"-5"');
    expectUserError(() => parseInputIds('1.5', 32064), 'item 1');
    expectUserError(() => parseInputIds('abc', 32064), '"abc"');
    expectUserError(() => parseInputIds('1,32064', 32064), 'token id 32064', 'item 2', '0..32063');
    expectUserError(() => parseInputIds('99999999999999999999', 32064), 'out of range');
    expectUserError(() => parseInputIds('5', 5, 'ids.txt'), /^ids\.txt: /);
  });
});

describe('chat template', () => {
  const fromJson = chatFromJson; // chat_template.json
  // The same template as llava-hf's chat_template.jinja (the fixture copy came with CRLF
  // line endings, also inside the '<image>\n' literal; see the CRLF test below).
  const fromJinja = chatFromJinja;

  it('renders the LLaVA-1.5 prompt for one user turn with one image', () => {
    expect(fromJson).not.toBeNull();
    expect(recogniseChatTemplate(fromJson, 'x')).toBe('llava-1.5');
    expect(recogniseChatTemplate(fromJinja, 'x')).toBe('llava-1.5');
    expect(chatPrompt(fromJson, 'What is this?')).toBe('USER: <image>\nWhat is this? ASSISTANT:');
    expect(chatPrompt(fromJinja, 'What is this?')).toBe('USER: <image>\nWhat is this? ASSISTANT:');
    expect(chatPrompt(fromJson, 'Hi', { image: false })).toBe('USER: Hi ASSISTANT:');
  });

  it('reads chat_template.jinja with universal newlines, as Python does', async () => {
    const d = mkdtempSync(join(tmpdir(), 'phaselens-crlf-'));
    const lf = fromJinja.replace(/\r\n?/g, '\n');
    writeFileSync(join(d, 'chat_template.jinja'), lf.replace(/\n/g, '\r\n'));
    expect(await loadChatTemplate(d)).toBe(lf);
    expect(chatPrompt(await loadChatTemplate(d), 'Q')).toBe('USER: <image>\nQ ASSISTANT:');
  });

  it('the chat_template of tokenizer_config.json is used when there is no chat_template file', async () => {
    const d = mkdtempSync(join(tmpdir(), 'phaselens-chat-'));
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ chat_template: fromJson }));
    expect(await loadChatTemplate(d)).toBe(fromJson);
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({}));
    expect(await loadChatTemplate(d)).toBeNull();
  });

  it('follows the template for several turns, system messages and several images', () => {
    const msgs = [
      { role: 'system', content: [{ type: 'text' as const, text: 'Be brief.' }] },
      { role: 'user', content: [{ type: 'text' as const, text: 'Q1' }, { type: 'image' as const }, { type: 'image' as const }] },
      { role: 'assistant', content: [{ type: 'text' as const, text: 'A1' }] },
      { role: 'user', content: [{ type: 'text' as const, text: 'Q2' }] },
    ];
    // Jinja: role.upper() + ': ' (not for system), all images first, then each text + ' '.
    expect(applyChatTemplate(fromJson, msgs)).toBe('Be brief. USER: <image>\n<image>\nQ1 ASSISTANT: A1 USER: Q2 ASSISTANT:');
    expect(applyChatTemplate(fromJson, msgs.slice(1, 3), { addGenerationPrompt: false })).toBe('USER: <image>\n<image>\nQ1 ASSISTANT: A1 ');
  });

  it('recognises the template whatever its whitespace, comments and quoting', () => {
    const variant = fromJinja
      .replace(/\{#[^#]*#\}/g, '')
      .replace(/\{% /g, '{%- ')
      .replace(/'ASSISTANT:'/, '"ASSISTANT:"')
      .replace(/\{\{ '<image>\n' \}\}/, "{{ '<image>\\n' }}")
      .replace(/%\}\{%/g, '%}\n  {%');
    expect(variant).not.toBe(fromJinja);
    expect(normalizeTemplate(variant)).toBe(normalizeTemplate(fromJinja));
    expect(recogniseChatTemplate(variant, 'x')).toBe('llava-1.5');
  });

  it('refuses unknown or missing templates, suggesting --input-ids or no --chat', () => {
    const vicuna = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}";
    expectUserError(() => chatPrompt(vicuna, 'q', { source: 'ckpt/' }), 'ckpt/', 'unknown chat template', '--input-ids', '--chat');
    // A one-character change inside a literal is a different template.
    expectUserError(() => chatPrompt(fromJson.replace("'ASSISTANT:'", "'ASSISTANT: '"), 'q'), 'unknown chat template');
    expectUserError(() => chatPrompt(null, 'q', { source: 'instructblip/' }), 'instructblip/', 'no chat template', '--input-ids');
  });
});

describe('Q-Former tokenizer (BERT uncased WordPiece)', () => {
  const lines = readFileSync(join(BERT_DIR, 'vocab.txt'), 'utf8').split('\n');
  const id = (piece: string) => {
    const i = lines.indexOf(piece);
    if (i < 0) throw new Error(`test bug: ${piece} not in vocab.txt`);
    return i;
  };
  const fromJson = qformerFromJson;
  const fromVocab = QformerTokenizer.fromVocabTxt(readFileSync(join(BERT_DIR, 'vocab.txt'), 'utf8'), JSON.parse(readFileSync(join(BERT_DIR, 'tokenizer_config.json'), 'utf8')), 'vocab.txt');
  const cases: [string, string[]][] = [
    ['What is unusual about this image?', ['what', 'is', 'unusual', 'about', 'this', 'image', '?']],
    ['Héllo, WORLD!', ['hello', ',', 'world', '!']],
    ['tokenization of   two\tspaces', ['token', '##ization', 'of', 'two', 'spaces']],
    ["Describe the image in detail. Don't skip colours.", ['describe', 'the', 'image', 'in', 'detail', '.', 'don', "'", 't', 'skip', 'colours', '.']],
    ['', []],
  ];

  it('[CLS]/[SEP] are 101/102, vocab 30522', () => {
    expect(fromJson.clsId).toBe(101);
    expect(fromJson.sepId).toBe(102);
    expect(fromJson.padId).toBe(0);
    expect(fromJson.vocabSize).toBe(30522);
  });

  for (const [text, pieces] of cases) {
    it(`encodeQformer(${JSON.stringify(text)}) = [CLS] pieces [SEP] from vocab.txt`, () => {
      const want = [101, ...pieces.map(id), 102];
      expect(fromJson.encodeQformer(text)).toEqual(want);
      expect(fromVocab.encodeQformer(text)).toEqual(want);
    });
  }

  it('unknown characters become [UNK]; decoding joins word pieces', () => {
    expect(fromJson.encodeQformer('☃')).toEqual([101, 100, 102]);
    expect(fromJson.decode(fromJson.encodeQformer('Tokenization rocks'), { skipSpecialTokens: true })).toBe('tokenization rocks');
  });

  it('finds qformer_tokenizer/ inside an InstructBLIP checkpoint (tokenizer.json, else vocab.txt), and nothing elsewhere', async () => {
    expect(await readQformerTokenizer(nodeDirectory(mkdtempSync(join(tmpdir(), 'phaselens-qf-'))))).toBeNull();
    const d = qformerCheckpoint(BERT_DIR);
    rmSync(join(d, 'qformer_tokenizer', 'tokenizer.json'));
    expect((await readQformerTokenizer(nodeDirectory(d)))!.encodeQformer('What is this?')).toEqual(fromJson.encodeQformer('What is this?'));
  });
});
