/**
 * A labelled image set for neighbourhood overlap (`--data labels:FILE.jsonl:IMAGES_DIR`):
 * one image and its class label a line,
 *
 *   {"image": "cat_01.jpg", "label": "cat"}
 *
 * `image` relative to IMAGES_DIR; `id` optional (default: the image's stem). Every image
 * must be there (the neighbourhoods are over the whole set: one missing sample would change
 * every other's), every label a non-empty string, and there must be at least two classes
 * (with one, every neighbour shares the label and the overlap is 1 by construction).
 * Blank lines are skipped; ids must be unique.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';
import { checkUniqueIds, fileStem, safeId, type DataItem } from './item.ts';
import { describe, isObject, readJsonLines } from './read.ts';

export function labelItems(fs: DataFs, labelsPath: string, imagesDir: string): DataItem[] {
  const file = fs.resolve(labelsPath);
  const dir = fs.resolve(imagesDir);
  const items: DataItem[] = [];
  const where: string[] = [];
  for (const [line, x] of readJsonLines(fs, file)) {
    const at = `${file}:${line}`;
    if (!isObject(x)) throw new UserError(`${at}: expected an object {image, label}, found ${describe(x)}`);
    if (typeof x.image !== 'string' || x.image.trim() === '') throw new UserError(`${at}: "image" must be a non-empty string, found ${describe(x.image)}`);
    if (typeof x.label !== 'string' || x.label.trim() === '') throw new UserError(`${at}: "label" must be a non-empty string, found ${x.label === '' ? 'an empty string' : describe(x.label)}`);
    const image = fs.join(dir, x.image);
    if (!fs.exists(image)) throw new UserError(`${at}: image ${image} is missing (every sample of a labels data set is needed: the neighbourhoods span the whole set)`);
    const { image: _i, label, id, ...rest } = x;
    items.push({ id: safeId(id === undefined ? fileStem(x.image) : String(id)), image, captions: [], label: label as string, meta: { ...rest, dataset: 'labels', line } });
    where.push(at);
  }
  checkUniqueIds(items, (i) => where[i]);
  const classes = new Set(items.map((it) => it.label));
  if (classes.size < 2) throw new UserError(`${file}: ${items.length} image(s) but ${classes.size} class label(s)${classes.size ? ` (${[...classes][0]})` : ''}: neighbourhood overlap needs at least two classes`);
  return items;
}
