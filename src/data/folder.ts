/**
 * A plain folder of images (`--data folder:DIR`): every `.png`, `.jpg`, `.jpeg` file
 * directly in DIR (extension case ignored; subfolders and hidden files are not read),
 * sorted by name (UTF-16 code units, so the order does not depend on the locale).
 *
 * Captions come from an optional `DIR/captions.json`:
 * `{"<file name>": ["caption", ...], ...}` (the file name with its extension, as in DIR).
 * Images it does not mention get no captions (no recall is computed for them); a name it
 * mentions that is not an image in DIR is an error (usually a typo).
 *
 * id = file stem (`cat.png` → `cat`); when two images share a stem (`cat.png`, `cat.jpg`)
 * both use the whole file name instead (`cat.png`, `cat.jpg`). `meta.file_name` is the name.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';
import { checkUniqueIds, fileStem, safeId, type DataItem } from './item.ts';
import { describe, isObject, readJson } from './read.ts';

const IMAGE = /\.(png|jpe?g)$/i;

export const CAPTIONS_FILE = 'captions.json';

export function folderItems(fs: DataFs, folder: string): DataItem[] {
  const dir = fs.resolve(folder);
  const names = fs
    .list(dir)
    .filter((n) => IMAGE.test(n) && !n.startsWith('.') && fs.isFile(fs.join(dir, n)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) throw new UserError(`${dir}: no .png, .jpg or .jpeg images in this folder`);

  const captions = readCaptions(fs, dir, names);
  const stemCount = new Map<string, number>();
  for (const n of names) stemCount.set(fileStem(n), (stemCount.get(fileStem(n)) ?? 0) + 1);
  const items = names.map((n): DataItem => ({
    id: safeId(stemCount.get(fileStem(n))! > 1 ? n : fileStem(n)),
    image: fs.join(dir, n),
    captions: captions.get(n) ?? [],
    meta: { dataset: 'folder', file_name: n },
  }));
  checkUniqueIds(items, (i) => fs.join(dir, names[i]));
  return items;
}

function readCaptions(fs: DataFs, dir: string, names: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const path = fs.join(dir, CAPTIONS_FILE);
  if (!fs.exists(path)) return out;
  const j = readJson(fs, path);
  if (!isObject(j)) throw new UserError(`${path}: expected {"<file name>": ["caption", ...]}, found ${describe(j)}`);
  const known = new Set(names);
  const unknown: string[] = [];
  for (const [name, caps] of Object.entries(j)) {
    if (!Array.isArray(caps) || !caps.every((c) => typeof c === 'string')) {
      throw new UserError(`${path}: entry ${JSON.stringify(name)} must be a list of caption strings, found ${describe(caps)}${Array.isArray(caps) ? ' with a non-string in it' : ''}`);
    }
    if (!known.has(name)) unknown.push(name);
    out.set(name, caps.map((c) => c.trim()));
  }
  if (unknown.length > 0) {
    const list = unknown.slice(0, 5).map((n) => JSON.stringify(n)).join(', ') + (unknown.length > 5 ? `, ... (${unknown.length} in all)` : '');
    throw new UserError(`${path}: names files that are not images in ${dir}: ${list} (keys are file names with their extension)`);
  }
  return out;
}
