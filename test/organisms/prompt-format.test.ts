/**
 * The organisms were trained on exactly the inputs phaselens builds at inference: the ids
 * prepare.ts tokenised for training (after train.py's image-token expansion) equal what
 * `prepare` of the shipped checkpoint gives for the same question — the llava-1.5 chat
 * prompt, or InstructBLIP's [queries, </s>, instruction] with the Q-Former's
 * [CLS] instruction [SEP] — and the rendered pixels equal the decoded PNG the data set
 * ships. No GPU, no Python.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readImageFile } from '../../src/io/load-node.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { nodeDirectory, openFileSource } from '../../src/io/source-node.ts';
import { openModel } from '../../src/models/registry.ts';
import { QUESTION_TYPES } from '../../weights-tools/shapes/language.ts';
import { prepare, TASKS } from '../../weights-tools/train/prepare.ts';
import { EVAL_SCENES, EVAL_SEED, organismDir } from '../../weights-tools/train/shipped.ts';

const work = mkdtempSync(join(tmpdir(), 'phaselens-organism-prompts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function tensors(path: string): Promise<Map<string, { data: Int32Array | Uint8Array; shape: number[] }>> {
  const f = await SafetensorsFile.open(await openFileSource(path));
  const out = new Map();
  for (const [name, t] of f.tensors) {
    const raw = (await f.readTensor(name)).slice();
    out.set(name, { data: t.dtype === 'U8' ? raw : new Int32Array(raw.buffer), shape: t.shape });
  }
  await f.close();
  return out;
}

const row = (t: { data: Int32Array | Uint8Array; shape: number[] }, i: number) => [...t.data.subarray(i * t.shape[1], (i + 1) * t.shape[1])].filter((v) => v >= 0);

const SCENES = 3;

for (const arch of ['llava', 'instructblip'] as const) {
  describe(`${arch} organism: training inputs = inference inputs`, () => {
    it('ids of every task of the first scenes, and the pixels', async () => {
      const dir = organismDir(arch);
      const file = join(work, `${arch}.safetensors`);
      await prepare({ model: dir, seed: EVAL_SEED, scenes: SCENES, out: file });
      const t = await tensors(file);
      const files = await openModel(nodeDirectory(dir));
      const truth = JSON.parse(readFileSync(join(EVAL_SCENES, 'scenes.json'), 'utf8')).scenes;
      const chat = arch === 'llava';
      const image = 32000;
      for (let s = 0; s < SCENES; s++) {
        const png = readImageFile(join(EVAL_SCENES, 'images', truth[s].file));
        const pixels = t.get('pixels')!;
        const n = png.data.length;
        expect(pixels.data.subarray(s * n, (s + 1) * n)).toEqual(png.data);
        for (let k = 0; k < TASKS.length; k++) {
          const i = s * TASKS.length + k;
          const question = k < QUESTION_TYPES.length ? truth[s].qa[k].question : 'Describe the image.';
          const x = files.prepare({ prompt: files.promptFor(question, chat), chat }, png);
          const nImage = x.groups.image[1] - x.groups.image[0];
          if (chat) {
            const ids = row(t.get('first')!, i).flatMap((id) => (id === image ? Array(nImage).fill(image) : [id]));
            expect(ids).toEqual(x.ids);
          } else {
            expect([...Array(nImage).fill(image), ...row(t.get('prompt')!, i)]).toEqual(x.ids);
            expect(row(t.get('qformer')!, i)).toEqual(x.qformerIds);
          }
          // and the answer the scene's ground truth gives, then EOS
          const answer = row(t.get('answer')!, i);
          expect(answer.at(-1)).toBe(2);
          expect(files.decode(answer.slice(0, -1)).trim()).toBe(k < QUESTION_TYPES.length ? truth[s].qa[k].answer : truth[s].caption);
        }
      }
      await files.close();
    });
  });
}
