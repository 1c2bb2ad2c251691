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
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { checkUniqueIds, fileStem, safeId, type DataItem } from './item.ts';
import { describe, isObject, listDir, readJson } from './read.ts';

const IMAGE = /\.(png|jpe?g)$/i;

export const CAPTIONS_FILE = 'captions.json';

export function loadFolder(folder: string): DataItem[] {
  const dir = resolve(folder);
  const names = listDir(dir)
    .filter((n) => IMAGE.test(n) && !n.startsWith('.') && isFile(join(dir, n)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) throw new UserError(`${dir}: no .png, .jpg or .jpeg images in this folder`);

  const captions = readCaptions(dir, names);
  const stemCount = new Map<string, number>();
  for (const n of names) stemCount.set(fileStem(n), (stemCount.get(fileStem(n)) ?? 0) + 1);
  const items = names.map((n): DataItem => ({
    id: safeId(stemCount.get(fileStem(n))! > 1 ? n : fileStem(n)),
    image: join(dir, n),
    captions: captions.get(n) ?? [],
    meta: { dataset: 'folder', file_name: n },
  }));
  checkUniqueIds(items, (i) => join(dir, names[i]));
  return items;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false; // a dangling link: not an image we can read, and not worth failing over
  }
}

function readCaptions(dir: string, names: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const path = join(dir, CAPTIONS_FILE);
  if (!existsSync(path)) return out;
  const j = readJson(path);
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
