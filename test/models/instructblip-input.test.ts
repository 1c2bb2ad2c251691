/**
 * InstructBLIP input handling through the real CLI: every user mistake is a clear message
 * and exit 2 before any weight loads (stderr never says "loading weights"), never a stack
 * trace; and the flags that replace missing tokenizer files really work.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { readRefSafetensors } from '../reference/pyref.ts';

const readSafetensorsFile = async (p: string) => (await readRefSafetensors(p)).tensors;

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const work = mkdtempSync(join(tmpdir(), 'phaselens-ib-input-'));
const model = join(work, 'tiny');
const noQformerTok = join(work, 'no-qformer-tokenizer');
const noLmTok = join(work, 'no-lm-tokenizer');
const out = join(work, 'x.safetensors');
// 8 queries (tiny config), then "</s> What is this?"; and the Q-Former's [CLS] what is this ? [SEP]
const Q = 8;
const LM_IDS = [2, 1724, 338, 445, 29973];
const QF_IDS = '101,2054,2003,2023,1029,102';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, err: r.stderr, out: r.stdout };
}

function expectRefused(r: ReturnType<typeof cli>, msg: RegExp): void {
  expect(r.err).toMatch(msg);
  expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.err).not.toMatch(/loading weights/);
  expect(r.code).toBe(2);
}

beforeAll(async () => {
  await makeTiny({ arch: 'instructblip', out: model, seed: 2 });
  cpSync(model, noQformerTok, { recursive: true });
  rmSync(join(noQformerTok, 'qformer_tokenizer'), { recursive: true });
  cpSync(model, noLmTok, { recursive: true });
  rmSync(join(noLmTok, 'tokenizer.json'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('InstructBLIP input errors', () => {
  const image = ['--image', IMAGE];
  const cases: [string, string[], RegExp][] = [
    ['no qformer_tokenizer/ and no --qformer-input-ids', ['--model', noQformerTok, ...image, '--prompt', 'What is this?'], /qformer_tokenizer\/.*--qformer-input-ids/],
    ['no tokenizer.json and a text prompt', ['--model', noLmTok, ...image, '--prompt', 'What is this?'], /no tokenizer\.json.*--input-ids/],
    ['image tokens in the wrong place', ['--model', model, ...image, '--input-ids', [2, 32000, ...Array(Q - 1).fill(32000), 1724].join(','), '--prompt', 'x'], /8 image tokens .* exactly 8 at the start/],
    ['too few image tokens', ['--model', model, ...image, '--input-ids', [32000, 32000, 2, 1724].join(','), '--prompt', 'x'], /2 image tokens/],
    ['a Q-Former instruction longer than its max_position_embeddings', ['--model', model, ...image, '--prompt', 'word '.repeat(200)], /Q-Former instruction is 202 tokens.*max_position_embeddings = 128/],
    ['--chat', ['--model', model, ...image, '--prompt', 'hi', '--chat'], /no chat template/],
    ['no image', ['--model', model, '--prompt', 'hi'], /needs an image/],
    ['--input-ids without an instruction for the Q-Former', ['--model', model, ...image, '--input-ids', LM_IDS.join(',')], /Q-Former needs the instruction/],
    ['a Q-Former id outside its vocabulary', ['--model', model, ...image, '--prompt', 'hi', '--qformer-input-ids', '101,40000,102'], /--qformer-input-ids.*40000/],
  ];
  for (const [what, args, msg] of cases) it(`dump: ${what}`, () => expectRefused(cli('dump', ...args, '--out', out), msg));

  it('config.json errors: unknown model_type, cross_attention_frequency 0', () => {
    const cfgPath = join(noQformerTok, 'config.json');
    const good = readFileSync(cfgPath, 'utf8');
    const cfg = JSON.parse(good);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, model_type: 'blip-3' }));
    expectRefused(cli('dump', '--model', noQformerTok, ...image, '--prompt', 'x', '--out', out), /model_type.*blip-3.*not supported/);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, qformer_config: { ...cfg.qformer_config, cross_attention_frequency: 0 } }));
    expectRefused(cli('dump', '--model', noQformerTok, ...image, '--prompt', 'x', '--out', out), /cross_attention_frequency = 0 is out of range/);
    writeFileSync(cfgPath, good);
  });
});

describe('InstructBLIP flags that stand in for missing tokenizer files', () => {
  it('--qformer-input-ids replaces qformer_tokenizer/, and gives the same dump as tokenising the prompt', async () => {
    const a = join(work, 'a.safetensors');
    const b = join(work, 'b.safetensors');
    expect(cli('dump', '--model', model, '--image', IMAGE, '--prompt', 'What is this?', '--out', a).code).toBe(0);
    const r = cli('dump', '--model', noQformerTok, '--image', IMAGE, '--prompt', 'What is this?', '--qformer-input-ids', QF_IDS, '--out', b);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    const [ta, tb] = [await readSafetensorsFile(a), await readSafetensorsFile(b)];
    expect(Array.from(tb.get('qformer_input_ids')!.data)).toEqual(QF_IDS.split(',').map(Number));
    expect(Array.from(ta.get('qformer_input_ids')!.data)).toEqual(QF_IDS.split(',').map(Number));
    expect(Array.from(tb.get('logits')!.data)).toEqual(Array.from(ta.get('logits')!.data));
  });

  it('--input-ids without the query tokens get them prepended; with them, kept; without tokenizer.json, generate prints ids', async () => {
    const c = join(work, 'c.safetensors');
    const d = join(work, 'd.safetensors');
    expect(cli('dump', '--model', noLmTok, '--image', IMAGE, '--input-ids', LM_IDS.join(','), '--qformer-input-ids', QF_IDS, '--out', c).code).toBe(0);
    const withQueries = [...Array(Q).fill(32000), ...LM_IDS].join(',');
    expect(cli('dump', '--model', model, '--image', IMAGE, '--input-ids', withQueries, '--prompt', 'What is this?', '--out', d).code).toBe(0);
    const [tc, td] = [await readSafetensorsFile(c), await readSafetensorsFile(d)];
    expect(Array.from(tc.get('input_ids')!.data)).toEqual(withQueries.split(',').map(Number));
    expect(Array.from(tc.get('logits')!.data)).toEqual(Array.from(td.get('logits')!.data));
    const g = cli('generate', '--model', noLmTok, '--image', IMAGE, '--input-ids', LM_IDS.join(','), '--qformer-input-ids', QF_IDS, '--max-new-tokens', '3');
    expect(g.code).toBe(0);
    expect(g.out).toMatch(/^\[ids \d+,\d+,\d+\]/);
  });
});
