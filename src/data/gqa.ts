/**
 * A GQA-style data set for the information-flow study's knockouts (`--data
 * gqa:QUESTIONS.jsonl:IMAGES_DIR`): one question a line, with the answer and the box of the
 * question's central object,
 *
 *   {"image": "2354786.jpg", "question": "Is the sky dark?", "answer": "yes",
 *    "box": [12, 40, 180, 96], "subset": "ChooseAttr"}
 *
 * `box` [x0, y0, x1, y1] in the image's pixels (x0 < x1, y0 < y1) is required: it makes the
 * `object` / `image-object` token groups. `subset` (optional; the study's ChooseAttr,
 * ChooseCat, ChooseRel, CompareAttr, LogicalObj, QueryAttr, or any name) splits the knockout
 * tables; `id` is optional as in vqa.ts (`<image stem>-q<line>`). `image` is relative to
 * IMAGES_DIR; the question becomes the item's prompt and the answer what accuracy is scored
 * against. Blank lines are skipped; ids must be unique.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';
import { checkUniqueIds, fileStem, requireSomeImages, safeId, type DataItem } from './item.ts';
import { describe, isObject, readJsonLines } from './read.ts';
import { parseBox } from './vqa.ts';

export function gqaItems(fs: DataFs, questionsPath: string, imagesDir: string): DataItem[] {
  const file = fs.resolve(questionsPath);
  const dir = fs.resolve(imagesDir);
  const items: DataItem[] = [];
  const where: string[] = [];
  for (const [line, q] of readJsonLines(fs, file)) {
    const at = `${file}:${line}`;
    if (!isObject(q)) throw new UserError(`${at}: expected an object {image, question, answer, box}, found ${describe(q)}`);
    for (const key of ['image', 'question', 'answer'] as const) {
      if (typeof q[key] !== 'string' || (q[key] as string).trim() === '') throw new UserError(`${at}: "${key}" must be a non-empty string, found ${describe(q[key])}`);
    }
    if (q.box === undefined) throw new UserError(`${at}: "box" is missing: a gqa item needs its object's box [x0, y0, x1, y1] (use vqa: for questions without one)`);
    const box = parseBox(q.box, `${at}: "box"`);
    if (q.subset !== undefined && (typeof q.subset !== 'string' || q.subset === '')) throw new UserError(`${at}: "subset" must be a non-empty string, found ${describe(q.subset)}`);
    const id = q.id === undefined ? `${fileStem(q.image as string)}-q${line}` : String(q.id);
    const { image, question, answer, id: _i, box: _b, ...rest } = q;
    items.push({ id: safeId(id), image: fs.join(dir, image as string), captions: [], prompt: question as string, answers: [answer as string], box, meta: { ...rest, dataset: 'gqa', line } });
    where.push(at);
  }
  checkUniqueIds(items, (i) => where[i]);
  requireSomeImages(fs, items, dir, file);
  return items;
}
