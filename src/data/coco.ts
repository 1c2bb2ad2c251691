/**
 * COCO captions (`--data coco:ANNOTATIONS.json:IMAGES_DIR`), the official format of
 * `annotations/captions_{train,val}2017.json`:
 *
 * ```
 * { "info": {...}, "licenses": [{"id", "name", "url"}],
 *   "images": [{"id": 397133, "file_name": "000000397133.jpg", "license": 4,
 *               "coco_url", "flickr_url", "width", "height", "date_captured"}],
 *   "annotations": [{"image_id": 397133, "id": 370509, "caption": "A man is ..."}] }
 * ```
 *
 * One item per entry of `images`, in file order; id = file stem (`000000397133`); image =
 * `IMAGES_DIR/<file_name>`; captions = the `caption`s of the annotations with that
 * `image_id`, in file order, with surrounding white space trimmed (COCO has 5 per image,
 * some ending in "\n"). Annotations whose `image_id` is not in `images` are ignored, so a
 * trimmed `images` list selects a subset. `meta` carries the COCO id, the licence (id,
 * name, url) and the Flickr / COCO URLs for attribution.
 *
 * Images listed but missing from IMAGES_DIR stay in the list (the runner records them as
 * errors); if none of them is there, IMAGES_DIR is probably wrong and loading fails.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';
import { checkUniqueIds, fileStem, requireSomeImages, safeId, type DataItem } from './item.ts';
import { describe, isObject, readJson } from './read.ts';

export function cocoItems(fs: DataFs, annotationsPath: string, imagesDir: string): DataItem[] {
  const file = fs.resolve(annotationsPath);
  const dir = fs.resolve(imagesDir);
  const j = readJson(fs, file);
  if (!isObject(j)) throw new UserError(`${file}: expected a COCO captions object with "images" and "annotations", found ${describe(j)}`);
  const images = j.images;
  const annotations = j.annotations;
  if (!Array.isArray(images)) throw new UserError(`${file}: no "images" list (is this a COCO captions_*.json file?)`);
  if (!Array.isArray(annotations)) throw new UserError(`${file}: no "annotations" list (is this a COCO captions_*.json file?)`);

  const licenses = new Map<unknown, Record<string, unknown>>();
  if (Array.isArray(j.licenses)) for (const l of j.licenses) if (isObject(l)) licenses.set(l.id, l);

  const items: DataItem[] = [];
  const byImageId = new Map<string | number, DataItem>();
  images.forEach((im, i) => {
    const at = `${file}: images[${i}]`;
    if (!isObject(im)) throw new UserError(`${at}: expected an object, found ${describe(im)}`);
    const id = im.id;
    if (typeof id !== 'number' && typeof id !== 'string') throw new UserError(`${at}: "id" must be a number or string, found ${describe(id)}`);
    const name = im.file_name;
    if (typeof name !== 'string' || name === '') throw new UserError(`${at}: "file_name" must be a non-empty string, found ${describe(name)}`);
    if (byImageId.has(id)) throw new UserError(`${at}: image id ${JSON.stringify(id)} appears twice in "images"`);
    const lic = licenses.get(im.license);
    const item: DataItem = {
      id: safeId(fileStem(name)),
      image: fs.join(dir, name),
      captions: [],
      meta: {
        dataset: 'coco',
        coco_id: id,
        file_name: name,
        ...(im.license !== undefined && { license: im.license }),
        ...(lic && { license_name: lic.name, license_url: lic.url }),
        ...(im.flickr_url !== undefined && { flickr_url: im.flickr_url }),
        ...(im.coco_url !== undefined && { coco_url: im.coco_url }),
        ...(im.width !== undefined && { width: im.width, height: im.height }),
      },
    };
    byImageId.set(id, item);
    items.push(item);
  });

  annotations.forEach((a, i) => {
    const at = `${file}: annotations[${i}]`;
    if (!isObject(a)) throw new UserError(`${at}: expected an object, found ${describe(a)}`);
    if (typeof a.caption !== 'string') {
      const hint = a.caption === undefined && ('bbox' in a || 'segmentation' in a) ? ' (this looks like an instances_*.json file; use captions_*.json)' : '';
      throw new UserError(`${at}: "caption" must be a string, found ${describe(a.caption)}${hint}`);
    }
    if (typeof a.image_id !== 'number' && typeof a.image_id !== 'string') throw new UserError(`${at}: "image_id" must be a number or string, found ${describe(a.image_id)}`);
    byImageId.get(a.image_id)?.captions.push(a.caption.trim());
  });

  checkUniqueIds(items, (i) => `${file}: images[${i}] (${(items[i].meta as { file_name: string }).file_name})`);
  requireSomeImages(fs, items, dir, file);
  return items;
}
