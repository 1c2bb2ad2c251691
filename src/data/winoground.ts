/**
 * Winoground (`--data winoground:EXAMPLES.jsonl:IMAGES_DIR`), the layout of the
 * facebook/winoground release: `data/examples.jsonl`, one example per line,
 *
 * ```
 * {"id": 0, "image_0": "ex_0_img_0", "image_1": "ex_0_img_1",
 *  "caption_0": "an old person kisses a young person",
 *  "caption_1": "a young person kisses an old person",
 *  "tag": "Object", "secondary_tag": "", "num_main_preds": 1, "collapsed_tag": "Object"}
 * ```
 *
 * and `data/images/ex_0_img_0.png`. Each example gives two items, its two matching
 * image–caption pairs, in file order: `wino-<id>-0` = (image_0, caption_0) and
 * `wino-<id>-1` = (image_1, caption_1). The image is `IMAGES_DIR/<image_k>` + the first of
 * `.png`, `.jpg`, `.jpeg` that exists (a name that already ends in one is used as is; when
 * none exists the `.png` path is kept and the runner records the item as failed). `meta`
 * holds the example id, the pair index, the other pair's image and caption, and every
 * other field of the line (tag, secondary_tag, num_main_preds, collapsed_tag, ...).
 * Blank lines are skipped; example ids must be unique.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';
import { checkUniqueIds, requireSomeImages, safeId, type DataItem } from './item.ts';
import { describe, isObject, readJsonLines } from './read.ts';

const EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export function winogroundItems(fs: DataFs, examplesPath: string, imagesDir: string): DataItem[] {
  const file = fs.resolve(examplesPath);
  const dir = fs.resolve(imagesDir);
  const present = new Set(fs.list(dir));
  const resolveImage = (name: string): string => {
    if (EXTENSIONS.some((e) => name.toLowerCase().endsWith(e))) return fs.join(dir, name);
    const found = EXTENSIONS.map((e) => name + e).find((n) => present.has(n));
    return fs.join(dir, found ?? name + '.png');
  };

  const items: DataItem[] = [];
  const where: string[] = [];
  const lines = new Map<string, number>();
  for (const [line, ex] of readJsonLines(fs, file)) {
    const at = `${file}:${line}`;
    if (!isObject(ex)) throw new UserError(`${at}: expected an object, found ${describe(ex)}`);
    if (typeof ex.id !== 'number' && typeof ex.id !== 'string') throw new UserError(`${at}: "id" must be a number or string, found ${describe(ex.id)}`);
    const exId = String(ex.id);
    const prev = lines.get(exId);
    if (prev !== undefined) throw new UserError(`${at}: example id ${JSON.stringify(ex.id)} already used on line ${prev}`);
    lines.set(exId, line);
    for (const f of ['image_0', 'image_1', 'caption_0', 'caption_1']) {
      const v = ex[f];
      if (typeof v !== 'string' || (f.startsWith('image') && v === '')) {
        throw new UserError(`${at}: "${f}" must be a${f.startsWith('image') ? ' non-empty' : ''} string, found ${v === undefined ? 'nothing' : describe(v)}`);
      }
    }
    const { id: _id, image_0, image_1, caption_0, caption_1, ...rest } = ex as Record<string, unknown> & Record<'image_0' | 'image_1' | 'caption_0' | 'caption_1', string>;
    const pairs: [string, string][] = [
      [image_0, caption_0],
      [image_1, caption_1],
    ];
    pairs.forEach(([image, caption], k) => {
      const [otherImage, otherCaption] = pairs[1 - k];
      items.push({
        id: safeId(`wino-${exId}-${k}`),
        image: resolveImage(image),
        captions: [caption],
        meta: { ...rest, dataset: 'winoground', example: ex.id, pair: k, image_name: image, other_image: otherImage, other_caption: otherCaption },
      });
      where.push(`${at} (pair ${k})`);
    });
  }
  checkUniqueIds(items, (i) => where[i]);
  requireSomeImages(fs, items, dir, file);
  return items;
}
