/**
 * The gate measures (`phaselens gate`) against HF transformers itself, on two tiny
 * Chameleon checkpoints — make-tiny's (random weights) and the constructed gate
 * (weights-tools/constructed-gate.ts) — and make-tiny's LLaVA. phaselens runs the real CLI
 * (`gate`, and `dump` for the sequence, the pixels and the image's BPE ids);
 * test/hf/hf_gate.py runs HF (eager attention, float32, output_attentions /
 * output_hidden_states) on the dump's input.
 *
 * - Attention share: HF's attention maps, averaged over heads, summed per image-side group,
 *   averaged over the text queries after the image, against phaselens' `of_all` (and the
 *   share, that normalised over the image side). |Δ| ≤ 2e-5: both are f32 softmax weights
 *   of the same scores (the parity test bounds the hidden states at 1e-4 relative; q and
 *   k come from them through one layer's projections), summed over ≤ 100 keys.
 * - Separation: HF's hidden states in float64, every image × text |cos| sorted; phaselens'
 *   median and quartiles (read off its histogram) must lie within 2 bins of the ⌈p·N⌉-th
 *   smallest (one bin: the histogram's resolution; one more: values near a bin edge) plus
 *   2e-4 for the f32 hidden states themselves (relative 1e-4 in each vector of a cosine).
 * The groups and sets are rebuilt here from the dump's input_ids and the checkpoint's
 * config / tokenizer, not taken from phaselens.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hfPython } from '../../bench/hf.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { makeConstructedGate } from '../../weights-tools/constructed-gate.ts';
import { readRefSafetensors, runPython } from '../reference/pyref.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const PROMPTS: Record<string, string> = { tiny: '<image>What is shown in this image?', gate: '<image>What is shown in this image?', llava: '<image>\nWhat is shown in this image?' };
const SHARE_TOL = 2e-5;
const work = mkdtempSync(join(tmpdir(), 'phaselens-gate-hf-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.status, r.stderr).toBe(0);
}

beforeAll(async () => {
  mkdirSync(join(work, 'images'));
  copyFileSync(IMAGE, join(work, 'images', 'cats.png'));
  await makeTiny({ arch: 'chameleon', out: join(work, 'tiny'), seed: 5, dtype: 'f32' });
  await makeConstructedGate(join(work, 'gate'), 5);
  await makeTiny({ arch: 'llava', out: join(work, 'llava'), seed: 5, dtype: 'f32' });
});

const TITLE: Record<string, string> = { tiny: "make-tiny's chameleon", gate: 'the constructed gate', llava: "make-tiny's llava" };

for (const model of ['tiny', 'gate', 'llava']) {
  describe(`gate measures vs HF: ${TITLE[model]}`, () => {
    it('attention share per image-side group and the separation quantiles', async () => {
      const dir = join(work, model);
      const out = join(work, `out-${model}`);
      const prompt = PROMPTS[model];
      const dump = join(work, `${model}.safetensors`);
      cli('gate', '--model', dir, '--data', `folder:${join(work, 'images')}`, '--prompt', prompt, '--out', out);
      cli('dump', '--model', dir, '--image', IMAGE, '--prompt', prompt, '--out', dump);
      const r = JSON.parse(readFileSync(join(out, 'images', readdirSync(join(out, 'images'))[0]), 'utf8'));
      const { tensors } = await readRefSafetensors(dump);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      const raw = Array.from(tensors.get('input_ids')!.data);
      const positions = raw.map((_, i) => i);
      let groups: Record<string, number[]>;
      let image: number[];
      if (model === 'llava') {
        image = positions.filter((i) => raw[i] === config.image_token_index);
        groups = { 'internal-image': image.slice(0, -1), 'last-image': image.slice(-1) };
      } else {
        image = positions.filter((i) => raw[i] === config.vocabulary_map['<image>']);
        const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).added_tokens as { id: number; content: string }[];
        const idOf = (s: string) => tok.find((t) => t.content === s)!.id;
        const start = raw.indexOf(idOf('<racm3:break>'));
        const end = raw.indexOf(idOf('<eoss>'));
        expect([start, end]).toEqual([image[0] - 1, image.at(-1)! + 1]);
        groups = { 'start-of-image': [start], 'internal-image': image.slice(0, -1), 'last-image': image.slice(-1), 'end-of-image': [end] };
      }
      // text: every position outside the image side (Chameleon: its sentinels are image side)
      const side = new Set(Object.values(groups).flat());
      const queries = positions.filter((i) => i > Math.max(...side));
      const text = positions.filter((i) => !side.has(i));
      expect(r.tokens.queries).toEqual(queries);
      expect(r.tokens.image_side).toEqual(groups);

      const py = await runPython([join(import.meta.dirname, 'hf_gate.py'), dir, dump, JSON.stringify(Object.values(groups)), queries.join(','), image.join(','), text.join(',')], hfPython());
      const hf = JSON.parse(py.stdout) as { attention: number[][]; cos: number[][] };
      const names = Object.keys(groups);
      hf.attention.forEach((row, l) => {
        const sideMass = row.reduce((a, b) => a + b, 0);
        names.forEach((name, g) => {
          const got = r.attention.groups[name];
          expect(Math.abs(got.of_all[l] - row[g]), `${name} layer ${l} of_all: ${got.of_all[l]} vs HF ${row[g]}`).toBeLessThanOrEqual(SHARE_TOL);
          expect(Math.abs(got.share[l] - row[g] / sideMass), `${name} layer ${l} share`).toBeLessThanOrEqual(SHARE_TOL);
        });
      });
      const tol = 2 / r.separation.bins + 2e-4;
      hf.cos.forEach((sorted, l) => {
        expect(r.separation.pairs[l]).toBe(sorted.length);
        for (const [p, key] of [[0.25, 'q1'], [0.5, 'median'], [0.75, 'q3']] as const) {
          const kth = sorted[Math.ceil(p * sorted.length) - 1];
          expect(Math.abs(r.separation[key][l] - kth), `hidden state ${l} ${key}: ${r.separation[key][l]} vs HF ${kth}`).toBeLessThanOrEqual(tol);
        }
      });
      // the measure tells the two apart: the hand-set gate at <eoss>, and no gate in random weights
      const gate = r.attention.groups[model === 'llava' ? 'last-image' : 'end-of-image'].share;
      if (model === 'gate') expect(Math.min(...gate)).toBeGreaterThanOrEqual(0.9);
      else expect(Math.max(...gate)).toBeLessThan(0.9);
    });
  });
}
