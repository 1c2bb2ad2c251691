/**
 * A VQA-style data set (`--data vqa:QUESTIONS.jsonl:IMAGES_DIR`): one question a line,
 *
 *   {"image": "000000039769.png", "question": "How many cats are there?", "answers": ["2", "two"]}
 *
 * with an optional "id" (default: the image stem and the line number, `<stem>-q<line>`).
 * `image` is relative to IMAGES_DIR. The question becomes the item's prompt; `answers`
 * (one or more strings) are what accuracy is scored against (vqa-score.ts).
 * Blank lines are skipped; ids must be unique.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';
import { checkUniqueIds, fileStem, requireSomeImages, safeId, type DataItem } from './item.ts';
import { describe, isObject, readJsonLines } from './read.ts';

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
    const { image, question, answers: _a, id: _i, ...rest } = q;
    items.push({ id: safeId(id), image: fs.join(dir, image as string), captions: [], prompt: question as string, answers: answers as string[], meta: { ...rest, dataset: 'vqa', line } });
    where.push(at);
  }
  checkUniqueIds(items, (i) => where[i]);
  requireSomeImages(fs, items, dir, file);
  return items;
}
