/**
 * `phaselens knockout`, `ablate` and `patch` through the real CLI on tiny checkpoints of
 * both families: the outputs and their schema (README), and bad input refused with a
 * clear message before any weight loads.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { cli, refused } from '../helpers/cli.ts';

const FIX = join(import.meta.dirname, '../fixtures/images');
const CATS = join(FIX, '000000039769.png');
const OTHER = join(FIX, '000000011813.jpg');
const work = mkdtempSync(join(tmpdir(), 'phaselens-interventions-cli-'));
const vqa = join(work, 'vqa');



beforeAll(async () => {
  mkdirSync(vqa);
  for (const f of [CATS, OTHER]) copyFileSync(f, join(vqa, f.split('/').pop()!));
  writeFileSync(
    join(vqa, 'q.jsonl'),
    ['{"image": "000000039769.png", "question": "How many cats are there?", "answers": ["2", "two"]}', '{"image": "000000011813.jpg", "question": "What is on the table?", "answers": ["food"]}'].join('\n'),
  );
  await makeTiny({ arch: 'llava', out: join(work, 'llava'), seed: 8, gqa: true });
  await makeTiny({ arch: 'instructblip', out: join(work, 'instructblip'), seed: 8 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const data = () => `vqa:${join(vqa, 'q.jsonl')}:${vqa}`;
const chat = (arch: string) => (arch === 'llava' ? ['--chat'] : []);

for (const arch of ['llava', 'instructblip'] as const) {
  describe(`${arch}: the three commands`, () => {
    const model = () => join(work, arch);

    it('knockout writes per-item flows for every centre layer, the aggregate, the figure and the report', () => {
      const out = join(work, `ko-${arch}`);
      const r = cli('knockout', '--model', model(), '--data', data(), ...chat(arch), '--flow', 'last<-image', '--flow', 'image->bos', '--window', '3', '--out', out);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.code).toBe(0);
      const items = readdirSync(join(out, 'images'));
      expect(items).toHaveLength(2);
      const j = JSON.parse(readFileSync(join(out, 'images', items[0]), 'utf8'));
      expect(Object.keys(j.flows)).toEqual(['last<-image', 'bos<-image']);
      const f = j.flows['last<-image'];
      expect(f.centres).toEqual([0, 1, 2]);
      expect(f.window).toEqual([[0, 1], [0, 2], [1, 2]]);
      f.p.forEach((p: number, i: number) => expect(f.rel_change_pct[i]).toBeCloseTo(((p - j.answer.p_base) / j.answer.p_base) * 100, 9));
      // BOS (position 0 for LLaVA) sees no later key: blocking its edges to the image changes nothing
      if (arch === 'llava') expect(j.flows['bos<-image'].p).toEqual([j.answer.p_base, j.answer.p_base, j.answer.p_base]);
      const agg = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8'));
      expect(agg.flows['last<-image'].rel_change_pct[0].n).toBe(2);
      expect(readFileSync(join(out, 'figures', 'knockout_rel_change.svg'), 'utf8')).toContain('last&lt;-image');
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('Attention knockout');
    });

    it('knockout --from-last on a VQA set: answers generated under each knockout (8 tokens by default), scored; the ablation table', () => {
      const out = join(work, `ko-last-${arch}`);
      const r = cli('knockout', '--model', model(), '--data', data(), ...chat(arch), '--flow', 'text<-last-image', '--flow', 'text<-image', '--from-last', '--seed', '5', '--out', out);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.code).toBe(0);
      const items = readdirSync(join(out, 'images')).map((f) => JSON.parse(readFileSync(join(out, 'images', f), 'utf8')));
      for (const j of items) {
        expect(j.mode).toBe('from-last');
        expect(j.options.generate).toBe(8);
        expect(j.generation.max_new_tokens).toBe(8);
        expect(j.vqa.correct_base).toBe(j.vqa.answers.some((a: string) => a.toLowerCase() === j.generation.base.trim().toLowerCase()));
        const f = j.flows['text<-image'];
        expect(f.generated_tokens_are_queries).toBe(true);
        expect(f.window).toEqual([[2, 2], [1, 2], [0, 2]]);
        expect(f.answers).toHaveLength(3);
        f.answers.forEach((a: string, i: number) => expect(f.same_as_base[i]).toBe(a.trim() === j.generation.base.trim()));
        expect(f.correct).toHaveLength(3);
        expect(j.flows['text<-last-image'].src).toEqual([j.flows['text<-image'].src.at(-1)]);
      }
      const agg = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8'));
      expect(agg.mode).toBe('from-last');
      expect(agg.vqa.n).toBe(2);
      expect(agg.vqa.accuracy_base).toBe(items.filter((j) => j.vqa.correct_base).length / 2);
      const f = agg.flows['text<-image'];
      f.window.forEach((_: unknown, i: number) => {
        expect(f.accuracy[i]).toBe(items.filter((j) => j.flows['text<-image'].correct[i]).length / 2);
        expect(f.agreement[i]).toBe(items.filter((j) => j.flows['text<-image'].same_as_base[i]).length / 2);
        expect(f.p[i].mean).toBeCloseTo((items[0].flows['text<-image'].p[i] + items[1].flows['text<-image'].p[i]) / 2, 12);
      });
      expect(existsSync(join(out, 'figures', 'knockout_from_last.svg'))).toBe(true);
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('from the last layers back');
    });

    it('ablate writes answers with and without the ablation, p_drop and VQA accuracy', () => {
      const out = join(work, `ab-${arch}`);
      const r = cli('ablate', '--model', model(), '--data', data(), ...chat(arch), '--token', 'image', '--layers', '0-1', '--sweep-layers', '--max-new-tokens', '2', '--out', out);
      expect(r.code).toBe(0);
      const j = JSON.parse(readFileSync(join(out, 'images', readdirSync(join(out, 'images'))[0]), 'utf8'));
      expect(j.ablation.layers).toEqual([0, 1]);
      expect(j.ablation.p_drop).toBeCloseTo(j.answer.p_base - j.ablation.p_answer, 12);
      expect(j.per_layer.map((p: { layer: number }) => p.layer)).toEqual([0, 1]);
      expect(typeof j.vqa.correct_base).toBe('boolean');
      const agg = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8'));
      expect(agg.vqa.n).toBe(2);
      expect(existsSync(join(out, 'figures', 'ablate_p_drop.svg'))).toBe(true);
    });

    it('patch writes patch.json: the whole-sequence patch at layer 0 reproduces the source run', () => {
      const out = join(work, `pa-${arch}`);
      const prompt = arch === 'llava' ? ['--prompt', 'What animal is this?', '--chat'] : ['--prompt', 'What animal is this?'];
      const r = cli('patch', '--model', model(), '--source', CATS, '--target', OTHER, ...prompt, '--token', 'image', '--answers', 'cat,dog', '--out', out);
      expect(r.code).toBe(0);
      const j = JSON.parse(readFileSync(join(out, 'patch.json'), 'utf8'));
      expect(j.site).toBe('lm.blocks.{l}.resid_pre');
      expect(Object.keys(j.answers)).toEqual(['cat', 'dog']);
      expect(j.per_layer).toHaveLength(3);
      // only the image rows differ between the two runs, so patching them at layer 0 is the source run
      expect(j.per_layer[0].logit_diff).toBe(j.base_source.logit_diff);
      expect(j.per_layer[0].logit_diff).not.toBe(j.base_target.logit_diff);
    });
  });
}

describe('bad input is refused before any weight loads', () => {
  const llava = () => join(work, 'llava');
  const cases: [string, () => string[], RegExp][] = [
    ['knockout: unknown group', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'last<-imgae', '--out', join(work, 'x')], /unknown token group "imgae"/],
    ['knockout: overlapping groups', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'text<-last', '--out', join(work, 'x')], /overlap/],
    ['knockout: bad flow', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'last=image', '--out', join(work, 'x')], /DST<-SRC or SRC->DST/],
    ['knockout: window 0', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'last<-image', '--window', '0', '--out', join(work, 'x')], /--window must be an integer ≥ 1/],
    ['knockout: several-token answer', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'last<-image', '--answer', 'couch potato', '--out', join(work, 'x')], /is \d+ tokens.*--first-token/],
    ['knockout: a number is a word, not token id 2', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'last<-image', '--answer', '2', '--out', join(work, 'x')], /--answer "2" is 2 tokens .*id:\d+/],
    ['ablate: layers outside the model', () => ['ablate', '--model', llava(), '--data', data(), '--chat', '--token', '@5', '--layers', '0-9', '--out', join(work, 'x')], /within 0\.\.2/],
    ['ablate: position past the sequence', () => ['ablate', '--model', llava(), '--data', data(), '--chat', '--token', '@999', '--out', join(work, 'x')], /past the sequence/],
    ['ablate: half a GQA group of heads', () => ['ablate', '--model', llava(), '--data', data(), '--chat', '--token', 'image', '--heads', '0', '--out', join(work, 'x')], /whole groups/],
    ['patch: numbers are words, not token ids', () => ['patch', '--model', llava(), '--source', CATS, '--target', OTHER, '--prompt', 'x', '--chat', '--token', 'image', '--answers', '2,3', '--out', join(work, 'x')], /--answers "2" is 2 tokens/],
    ['patch: one answer', () => ['patch', '--model', llava(), '--source', CATS, '--target', OTHER, '--prompt', 'x', '--chat', '--token', 'image', '--answers', 'cat', '--out', join(work, 'x')], /give two answers/],
    ['patch: neither source nor vector', () => ['patch', '--model', llava(), '--target', OTHER, '--prompt', 'x', '--chat', '--token', 'image', '--answers', 'cat,dog', '--out', join(work, 'x')], /--source IMG.*--add/],
    ['knockout: --window with --layers', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'gate', '--layers', 'all', '--window', '3', '--out', join(work, 'x')], /--window is the window sweep's/],
    ['knockout: --layers and --from-last', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'text<-image', '--layers', 'all', '--from-last', '--out', join(work, 'x')], /either --layers or --from-last/],
    ['knockout: --generate in the window sweep', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'text<-image', '--generate', '4', '--out', join(work, 'x')], /--generate .*give --layers or --from-last/],
    ['knockout: --layers outside the model', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'text<-image', '--layers', '1-3', '--out', join(work, 'x')], /--layers 1-3: give all, a layer, or a range a-b within 0\.\.2/],
    ['knockout: end-of-image on LLaVA', () => ['knockout', '--model', llava(), '--data', data(), '--chat', '--flow', 'gate', '--layers', 'all', '--out', join(work, 'x')], /token group "end-of-image": this model's sequence has no end-of-image token .*its groups: image, patches, text, .*last-image, random-image/],
    ['patch: --data with --target', () => ['patch', '--model', llava(), '--data', data(), '--target', OTHER, '--chat', '--token', 'image', '--out', join(work, 'x')], /without --source, --target and --add/],
    ['patch: --data of one item', () => ['patch', '--model', llava(), '--data', data(), '--limit', '1', '--chat', '--token', 'last-image', '--out', join(work, 'x')], /at least two items, this run has 1/],
    ['patch: --every with --layers', () => ['patch', '--model', llava(), '--data', data(), '--chat', '--token', 'last-image', '--every', '2', '--layers', '0', '--out', join(work, 'x')], /either --layers or --every/],
    ['patch: --target without --answers', () => ['patch', '--model', llava(), '--source', CATS, '--target', OTHER, '--prompt', 'x', '--chat', '--token', 'image', '--out', join(work, 'x')], /--answers A,B is needed with --target/],
  ];
  for (const [what, args, msg] of cases) it(what, () => refused(cli(...args()), msg));
});
