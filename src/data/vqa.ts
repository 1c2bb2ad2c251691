/**
 * A VQA-style data set (`--data vqa:QUESTIONS.jsonl:IMAGES_DIR`): one question a line,
 *
 *   {"image": "000000039769.png", "question": "How many cats are there?", "answers": ["2", "two"]}
 *
 * with an optional "id" (default: the image stem and the line number, `<stem>-q<line>`) and
 * an optional "box" [x0, y0, x1, y1] in the image's pixels (x0 < x1, y0 < y1): the object the
 * `object` / `image-object` token groups are made from (GQA's object annotations).
 * `image` is relative to IMAGES_DIR. The question becomes the item's prompt; `answers`
 * (one or more strings) are what accuracy is scored against (vqa-score.ts).
 * Blank lines are skipped; ids must be unique.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';
import { checkUniqueIds, fileStem, requireSomeImages, safeId, type DataItem } from './item.ts';
import { describe, isObject, readJsonLines } from './read.ts';

/** A box [x0, y0, x1, y1] of finite numbers ≥ 0 with x0 < x1 and y0 < y1 (a list, or the text "x0,y0,x1,y1"); `what` names it in the error. */
export function parseBox(v: unknown, what: string): [number, number, number, number] {
  const parts = typeof v === 'string' ? v.split(',').map((p) => (p.trim() === '' ? NaN : Number(p))) : v;
  if (!Array.isArray(parts) || parts.length !== 4 || !parts.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)) {
    throw new UserError(`${what} must be x0,y0,x1,y1 (four numbers ≥ 0, pixels of the image), found ${describe(v)}`);
  }
  const [x0, y0, x1, y1] = parts as number[];
  if (!(x1 > x0 && y1 > y0)) throw new UserError(`${what} ${JSON.stringify(v)} is empty: x1 must exceed x0 and y1 exceed y0`);
  return [x0, y0, x1, y1];
}

export function vqaItems(fs: DataFs, questionsPath: string, imagesDir: string): DataItem[] {
  const file = fs.resolve(questionsPath);
  const dir = fs.resolve(imagesDir);
  const items: DataItem[] = [];
  const where: string[] = [];
  for (const [line, q] of readJsonLines(fs, file)) {
    const at = `${file}:${line}`;
    if (!isObject(q)) throw new UserError(`${at}: expected an object {image, question, answers}, found ${describe(q)}`);
    if (typeof q.image !== 'string' || q.image === '') throw new UserError(`${at}: "image" must be a non-empty string, found ${describe(q.image)}`);
    if (typeof q.question !== 'string' || q.question.trim() === '') throw new UserError(`${at}: "question" must be a non-empty string, found ${describe(q.question)}`);
    const answers = typeof q.answers === 'string' ? [q.answers] : q.answers;
    if (!Array.isArray(answers) || answers.length === 0 || !answers.every((a) => typeof a === 'string')) {
      throw new UserError(`${at}: "answers" must be a string or a non-empty list of strings, found ${describe(q.answers)}`);
    }
    const id = q.id === undefined ? `${fileStem(q.image)}-q${line}` : String(q.id);
    const box = q.box === undefined ? undefined : parseBox(q.box, `${at}: "box"`);
    const { image, question, answers: _a, id: _i, box: _b, ...rest } = q;
    items.push({ id: safeId(id), image: fs.join(dir, image as string), captions: [], prompt: question as string, answers: answers as string[], ...(box && { box }), meta: { ...rest, dataset: 'vqa', line } });
    where.push(at);
  }
  checkUniqueIds(items, (i) => where[i]);
  requireSomeImages(fs, items, dir, file);
  return items;
}
