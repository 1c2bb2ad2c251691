/**
 * The `--data` argument of `phaselens analyze`:
 *
 * | spec                                  | loader         |
 * | ------------------------------------- | -------------- |
 * | `coco:ANNOTATIONS.json:IMAGES_DIR`    | coco.ts        |
 * | `winoground:EXAMPLES.jsonl:IMAGES_DIR`| winoground.ts  |
 * | `folder:DIR`                          | folder.ts      |
 * | `vqa:QUESTIONS.jsonl:IMAGES_DIR`      | vqa.ts         |
 * | `gqa:QUESTIONS.jsonl:IMAGES_DIR`      | gqa.ts         |
 * | `labels:FILE.jsonl:IMAGES_DIR`        | labels.ts      |
 *
 * Splitting rule (paths may contain ':'): the kind ends at the first ':'. For `folder`,
 * everything after it is DIR. For `coco`, `winoground`, `vqa`, `gqa` and `labels`, the file part ends at the next
 * ':' — unless that prefix is not an existing file, in which case the first later ':'
 * whose prefix is an existing file is used (so `coco:/data/a:b/captions.json:/img` works);
 * the rest is IMAGES_DIR and may contain ':' freely. A leading `~/` in a path means the
 * home folder (the shell does not expand it after `coco:`). Relative paths are taken from
 * the current folder; parsed specs hold absolute paths.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { cocoItems } from './coco.ts';
import { folderItems } from './folder.ts';
import { nodeDataFs } from './fs-node.ts';
import type { DataItem } from './item.ts';
import { gqaItems } from './gqa.ts';
import { labelItems } from './labels.ts';
import { vqaItems } from './vqa.ts';
import { winogroundItems } from './winoground.ts';

export type DataSpec =
  | { kind: 'coco'; annotations: string; images: string }
  | { kind: 'winoground'; examples: string; images: string }
  | { kind: 'folder'; dir: string }
  | { kind: 'vqa' | 'gqa'; questions: string; images: string }
  | { kind: 'labels'; labels: string; images: string };

export const DATA_SPEC_HELP = 'coco:ANNOTATIONS.json:IMAGES_DIR | winoground:EXAMPLES.jsonl:IMAGES_DIR | folder:DIR | vqa:QUESTIONS.jsonl:IMAGES_DIR | gqa:QUESTIONS.jsonl:IMAGES_DIR (question, answer, object box, subset) | labels:FILE.jsonl:IMAGES_DIR (image, class label)';

/** Parse and check a `--data` string: the kind is known, the file exists, the folders are folders. */
export function parseDataSpec(spec: string, cwd: string = process.cwd()): DataSpec {
  const colon = spec.indexOf(':');
  if (colon < 0) throw new UserError(`--data ${JSON.stringify(spec)}: expected ${DATA_SPEC_HELP}`);
  const kind = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  const abs = (p: string) => resolve(cwd, p.startsWith('~/') ? homedir() + p.slice(1) : p);

  if (kind === 'folder') {
    if (rest === '') throw new UserError(`--data ${spec}: give the folder, as folder:DIR`);
    return { kind, dir: checkDir(abs(rest), spec, 'DIR') };
  }
  if (kind !== 'coco' && kind !== 'winoground' && kind !== 'vqa' && kind !== 'gqa' && kind !== 'labels') {
    throw new UserError(`--data ${spec}: unknown data set kind "${kind}"; expected ${DATA_SPEC_HELP}`);
  }
  const fileWord = { coco: 'ANNOTATIONS.json', winoground: 'EXAMPLES.jsonl', vqa: 'QUESTIONS.jsonl', gqa: 'QUESTIONS.jsonl', labels: 'FILE.jsonl' }[kind];
  const usage = `${kind}:${fileWord}:IMAGES_DIR`;
  const cuts: number[] = [];
  for (let i = rest.indexOf(':'); i >= 0; i = rest.indexOf(':', i + 1)) cuts.push(i);
  if (cuts.length === 0 || rest.slice(0, cuts[0]) === '' || rest.slice(cuts[0] + 1) === '') {
    throw new UserError(`--data ${spec}: expected ${usage} (two parts after "${kind}:")`);
  }
  const cut = cuts.find((c) => isFile(abs(rest.slice(0, c)))) ?? cuts[0];
  const file = abs(rest.slice(0, cut));
  const images = rest.slice(cut + 1);
  if (!existsSync(file)) throw new UserError(`--data ${spec}: ${fileWord} ${file}: no such file`);
  if (!isFile(file)) throw new UserError(`--data ${spec}: ${fileWord} ${file}: not a file`);
  if (images === '') throw new UserError(`--data ${spec}: expected ${usage} (IMAGES_DIR is empty)`);
  const dir = checkDir(abs(images), spec, 'IMAGES_DIR');
  if (kind === 'vqa' || kind === 'gqa') return { kind, questions: file, images: dir };
  if (kind === 'labels') return { kind, labels: file, images: dir };
  return kind === 'coco' ? { kind, annotations: file, images: dir } : { kind, examples: file, images: dir };
}

/** Load the items of a data set (a parsed spec, or a `--data` string), in file order. */
export function loadData(spec: DataSpec | string): DataItem[] {
  const s = typeof spec === 'string' ? parseDataSpec(spec) : spec;
  switch (s.kind) {
    case 'coco':
      return cocoItems(nodeDataFs, s.annotations, s.images);
    case 'winoground':
      return winogroundItems(nodeDataFs, s.examples, s.images);
    case 'folder':
      return folderItems(nodeDataFs, s.dir);
    case 'vqa':
      return vqaItems(nodeDataFs, s.questions, s.images);
    case 'gqa':
      return gqaItems(nodeDataFs, s.questions, s.images);
    case 'labels':
      return labelItems(nodeDataFs, s.labels, s.images);
  }
}

/** The spec written back as a `--data` string (absolute paths), for run metadata. */
export function formatDataSpec(s: DataSpec): string {
  switch (s.kind) {
    case 'coco':
      return `coco:${s.annotations}:${s.images}`;
    case 'winoground':
      return `winoground:${s.examples}:${s.images}`;
    case 'folder':
      return `folder:${s.dir}`;
    case 'vqa':
    case 'gqa':
      return `${s.kind}:${s.questions}:${s.images}`;
    case 'labels':
      return `labels:${s.labels}:${s.images}`;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function checkDir(p: string, spec: string, word: string): string {
  if (!existsSync(p)) throw new UserError(`--data ${spec}: ${word} ${p}: no such folder`);
  if (!statSync(p).isDirectory()) throw new UserError(`--data ${spec}: ${word} ${p}: not a folder`);
  return p;
}
