/**
 * Real effects in the shipped organisms (weights-tools/organisms/), measured through the
 * phaselens CLI on the committed evaluation scenes (shapes-world seed 2001, never used in
 * training). The expected values come from the scenes' ground truth or from the data
 * itself, never from a run of the model:
 *
 *   - VQA accuracy (exact match, `ablate`'s un-ablated run) is high;
 *   - ablating every image position in every layer drops it to what answering without
 *     the image allows: at most the accuracy of always giving each question type's most
 *     common answer (computed from the ground truth) plus a margin;
 *   - on the questions answered from the image (colour, shape), knocking out
 *     last <- image in all layers drops the answer probability by ≥ 50 %, while a
 *     knockout that touches no image edge (between two template tokens before the
 *     image) moves it by < 5 %;
 *   - LogitLens caption-word recall of the visual tokens peaks above its layer-0 value;
 *   - `generate` answers a question about a shipped image as its ground truth says.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EVAL_SCENES, evalCoco, evalVqa, organismDir } from '../../weights-tools/train/shipped.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const work = mkdtempSync(join(tmpdir(), 'phaselens-organism-effects-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`phaselens ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

interface Question {
  id: string;
  image: string;
  question: string;
  answers: string[];
  type: string;
}
const questions: Question[] = readFileSync(join(EVAL_SCENES, 'vqa.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

/** Accuracy of answering every question with its type's most common true answer. */
function majorityBaseline(qs: readonly Question[]): number {
  const byType = new Map<string, Map<string, number>>();
  for (const q of qs) {
    const m = byType.get(q.type) ?? new Map();
    m.set(q.answers[0], (m.get(q.answers[0]) ?? 0) + 1);
    byType.set(q.type, m);
  }
  return [...byType.values()].reduce((n, m) => n + Math.max(...m.values()), 0) / qs.length;
}

/** Questions `ablate` runs (a seeded sample of the 240: about 3 min on lavapipe). */
const SAMPLE = 120;

const ORGANISMS = [
  // thresholds: the held-out accuracy in the model card minus room for the sample's
  // sampling error (±3.5 points at 1σ for 120 questions) and f16 / GPU-vs-PyTorch rounding of near ties
  // (shapes-llava: 0.706 over the five types on 500 held-out scenes; count and existence
  // are at their no-image level, see its card)
  { arch: 'llava', accuracy: 0.6, chat: ['--chat'] },
] as const;

for (const o of ORGANISMS) {
  describe(`${o.arch} organism`, () => {
    const model = organismDir(o.arch);

    it('answers the held-out questions, and ablating the image positions takes that away', { timeout: 600_000 }, () => {
      const out = join(work, `ablate-${o.arch}`);
      cli('ablate', '--model', model, '--data', evalVqa(), ...o.chat, '--limit', String(SAMPLE), '--seed', '0', '--token', 'image', '--layers', 'all', '--max-new-tokens', '3', '--out', out);
      const agg = json(join(out, 'aggregate.json'));
      expect(agg.vqa.n).toBe(SAMPLE);
      expect(agg.vqa.accuracy_base).toBeGreaterThanOrEqual(o.accuracy);
      // without the image a model can at best guess each type's most common answer (over
      // the questions sampled); the margin covers lucky guesses on binary questions
      const asked = new Set(readdirSync(join(out, 'images')).map((f) => f.replace(/\.json$/, '')));
      const baseline = majorityBaseline(questions.filter((q) => asked.has(q.id)));
      expect(agg.vqa.accuracy_ablated).toBeLessThanOrEqual(baseline + 0.1);
      expect(agg.vqa.accuracy_base - agg.vqa.accuracy_ablated).toBeGreaterThan(0.2);
    });

    it('knockout: last <- image in all layers halves the answer probability, an edge between template tokens does not move it', { timeout: 600_000 }, () => {
      const out = join(work, `knockout-${o.arch}`);
      // the question types the model answers from the image (its card: colour and shape);
      // a window of 16 centred anywhere in 8 layers covers them all
      const seen = join(work, `seen-${o.arch}.jsonl`);
      writeFileSync(seen, questions.filter((q) => q.type === 'colour' || q.type === 'shape').map((q) => JSON.stringify(q)).join('\n') + '\n');
      cli('knockout', '--model', model, '--data', `vqa:${seen}:${join(EVAL_SCENES, 'images')}`, ...o.chat, '--limit', '30', '--seed', '0', '--flow', 'last<-image', '--flow', '@2<-@1', '--window', '16', '--out', out);
      const agg = json(join(out, 'aggregate.json'));
      const layers = json(join(model, 'config.json')).text_config.num_hidden_layers;
      for (const [flow, f] of Object.entries(agg.flows) as [string, { window: number[][]; rel_change_pct: { mean: number }[] }][]) {
        const i = f.window.findIndex(([lo, hi]) => lo === 0 && hi >= layers - 1);
        expect(i, `${flow}: a window over all layers`).toBeGreaterThanOrEqual(0);
        const change = f.rel_change_pct[i].mean;
        if (flow === 'last<-image') expect(change).toBeLessThanOrEqual(-50);
        else expect(Math.abs(change)).toBeLessThan(5);
      }
    });

    it('LogitLens recall of the visual tokens peaks above layer 0, and the curve has phases', { timeout: 600_000 }, () => {
      const out = join(work, `analyze-${o.arch}`);
      cli('analyze', '--model', model, '--data', evalCoco(), ...o.chat, '--prompt', 'Describe the image.', '--out', out);
      expect(readdirSync(join(out, 'images'))).toHaveLength(48);
      const agg = json(join(out, 'aggregate.json'));
      const recall = agg.recall.map((s: { mean: number }) => s.mean);
      expect(Math.max(...recall)).toBeGreaterThan(recall[0]);
      expect(agg.phases.labels.length).toBeGreaterThanOrEqual(2);
    });

    it('generate answers a question about a shipped image as the ground truth says', { timeout: 120_000 }, () => {
      const scenes = json(join(EVAL_SCENES, 'scenes.json')).scenes;
      const { file, qa } = scenes[0];
      for (const q of qa.filter((x: { type: string }) => x.type === 'colour' || x.type === 'shape')) {
        const out = cli('generate', '--model', model, '--image', join(EVAL_SCENES, 'images', file), '--prompt', q.question, ...o.chat, '--max-new-tokens', '4');
        expect(out.replace('</s>', '').trim()).toBe(q.answer);
      }
    });
  });
}
