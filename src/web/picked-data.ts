/**
 * A data set from picked files, read by the CLI's own readers (src/data) through a DataFs
 * over the picked paths, so ids, order and captions are exactly those of `--data`:
 *
 *   examples.jsonl (+ images/ beside it, else the same folder)   → winoground
 *   a COCO captions JSON ({"images", "annotations"}; captions_*.json preferred), its images
 *   in whichever picked folder holds the first listed file_name   → coco
 *   otherwise the images at the top of the pick (+ captions.json) → folder
 *
 * The index files (.json, .jsonl) are read into memory first; image bytes stay in the
 * Files until an item runs.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from '../data/data-fs.ts';
import type { DataItem } from '../data/item.ts';
import { cocoItems } from '../data/coco.ts';
import { folderItems } from '../data/folder.ts';
import { winogroundItems } from '../data/winoground.ts';
import type { Picked } from './picked.ts';

export interface PickedData {
  /** How the page describes it (and the report's "data set" row). */
  spec: string;
  items: DataItem[];
  /** The image of an item (item.image is its path in the pick, the pick's name first). */
  blob(item: DataItem): Blob | undefined;
}

const dirOf = (p: string) => p.slice(0, Math.max(0, p.lastIndexOf('/')));
const baseOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/**
 * A synchronous DataFs over picked files keyed by path (the pick's own name first, so the
 * readers' messages and items name e.g. `coco_mini/val2017/x.jpg`); `texts` holds every
 * index file's text.
 */
export function pickedFs(files: ReadonlyMap<string, Blob>, texts: ReadonlyMap<string, string>): DataFs {
  const folders = new Set<string>();
  for (const path of files.keys()) for (let d = dirOf(path); d && !folders.has(d); d = dirOf(d)) folders.add(d);
  return {
    readText(path) {
      const t = texts.get(path);
      if (t === undefined) throw new UserError(`${path}: ${files.has(path) ? 'not read as a text file' : 'not among the picked files'}`);
      return t.charCodeAt(0) === 0xfeff ? t.slice(1) : t;
    },
    list(dir) {
      if (!folders.has(dir)) throw new UserError(`${dir}: not a folder of the pick`);
      const names = new Set<string>();
      for (const path of [...files.keys(), ...folders]) if (path.startsWith(`${dir}/`)) names.add(path.slice(dir.length + 1).split('/')[0]);
      return [...names];
    },
    isFile: (path) => files.has(path),
    exists: (path) => files.has(path) || folders.has(path),
    join: (dir, name) => `${dir}/${name}`,
    resolve: (path) => path.replace(/\/+$/, ''),
  };
}

export async function pickedData(p: Picked): Promise<PickedData> {
  const files = new Map<string, Blob>([...p.files].map(([k, v]) => [`${p.name}/${k}`, v]));
  const texts = new Map<string, string>();
  for (const [path, f] of files) if (/\.jsonl?$/i.test(path)) texts.set(path, await f.text());
  const fs = pickedFs(files, texts);
  const done = (spec: string, items: DataItem[]): PickedData => ({ spec, items, blob: (i) => files.get(i.image) });

  const examples = [...texts.keys()].find((k) => baseOf(k) === 'examples.jsonl');
  if (examples !== undefined) {
    const images = fs.join(dirOf(examples), 'images');
    const dir = fs.exists(images) ? images : dirOf(examples);
    return done(`winoground:${examples}:${dir}`, winogroundItems(fs, examples, dir));
  }
  const coco = cocoCandidate(texts);
  if (coco) {
    const dir = findFolderWith(files, coco.first);
    if (dir === undefined) throw new UserError(`${coco.path}: no picked folder holds its first image ${coco.first}; pick the folder that contains both the annotations and the images`);
    return done(`coco:${coco.path}:${dir}`, cocoItems(fs, coco.path, dir));
  }
  return done(`folder:${p.name}`, folderItems(fs, p.name));
}

/** The COCO captions file among the index files (captions_*.json first), with its first image's file name. */
function cocoCandidate(texts: ReadonlyMap<string, string>): { path: string; first: string } | null {
  const json = [...texts.keys()].filter((k) => k.toLowerCase().endsWith('.json'));
  const rank = (k: string) => (baseOf(k).startsWith('captions_') ? 0 : 1);
  json.sort((a, b) => rank(a) - rank(b));
  for (const path of json) {
    let j: unknown;
    try {
      j = JSON.parse(texts.get(path)!);
    } catch {
      continue; // not COCO; if it is meant to be, cocoItems is never reached and the folder reader names the file
    }
    const images = (j as { images?: unknown })?.images;
    if (Array.isArray(images) && Array.isArray((j as { annotations?: unknown }).annotations)) {
      const first = (images[0] as { file_name?: unknown } | undefined)?.file_name;
      return { path, first: typeof first === 'string' ? first : '' };
    }
  }
  return null;
}

/** The folder of the first picked file called `name`. */
function findFolderWith(files: ReadonlyMap<string, Blob>, name: string): string | undefined {
  for (const path of files.keys()) if (baseOf(path) === name) return dirOf(path);
  return undefined;
}
