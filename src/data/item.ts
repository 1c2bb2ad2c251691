/**
 * One unit of work for `phaselens analyze`: an image, the captions that describe it, and
 * where it came from. Every data set loader (coco.ts, winoground.ts, folder.ts) returns a
 * list of these; the runner (src/analysis/runner.ts) writes one result per item to
 * `OUT/images/<id>.json`.
 */
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';

export interface DataItem {
  /**
   * Unique within a data set and safe as a file name (see `safeId`): the result is
   * `OUT/images/<id>.json`. COCO and folder items use the image file stem; Winoground
   * items `wino-<example id>-<0|1>`.
   */
  id: string;
  /** Path of the image file, as the DataFs resolves it (Node: absolute; it may be missing or unreadable: the runner records that). */
  image: string;
  /** Reference captions (COCO: 5; Winoground: the pair's one; folder: from captions.json or none). */
  captions: string[];
  /** Text the data set itself asks to use as the prompt, if any (the VQA loader's question). */
  prompt?: string;
  /** Accepted answers (VQA). */
  answers?: string[];
  /** An object's box [x0, y0, x1, y1) in the image's pixels (VQA `box`): the `object` token group. */
  box?: [number, number, number, number];
  /** Class label (a labels: data set): neighbourhood overlap's classes. */
  label?: string;
  /** Per-data-set extras (COCO licence and URLs, Winoground tags, ...), copied into reports. */
  meta: Record<string, unknown>;
}

/** What a finished id looks like: letters, digits, `_`, `-`, `.`; not starting with `.`; ≤ 200 chars. */
export const SAFE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/**
 * A file-name-safe id from any string: every character outside `[A-Za-z0-9._-]` becomes `_`,
 * a leading `.` becomes `_` (no hidden files, no `..`), and the result is cut to 200
 * characters. Distinct inputs can map to the same id; loaders check uniqueness afterwards
 * (`checkUniqueIds`).
 */
export function safeId(raw: string): string {
  let s = raw.replace(/[^A-Za-z0-9._-]/g, '_');
  if (s.startsWith('.')) s = '_' + s.slice(1);
  if (s === '') s = '_';
  return s.slice(0, 200);
}

/** UserError naming both entries when two items share an id. `where(i)` describes item i for the message. */
export function checkUniqueIds(items: readonly DataItem[], where: (i: number) => string): void {
  const seen = new Map<string, number>();
  items.forEach((it, i) => {
    const j = seen.get(it.id);
    if (j !== undefined) {
      throw new UserError(`${where(i)} and ${where(j)} both map to the result name "${it.id}.json"; rename one of them`);
    }
    seen.set(it.id, i);
  });
}

/** The file name without its last extension: `a/b/000000000139.jpg` → `000000000139`. */
export function fileStem(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** UserError when not one listed image exists: the images folder is probably the wrong one. */
export function requireSomeImages(fs: DataFs, items: readonly DataItem[], dir: string, listedIn: string): void {
  if (items.length === 0 || items.some((it) => fs.exists(it.image))) return;
  throw new UserError(`${dir}: none of the ${items.length} images listed in ${listedIn} is there (e.g. ${items[0].image}); is this the right images folder?`);
}
