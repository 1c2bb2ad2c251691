/**
 * Every output path a command writes, checked before any work: a run that computes for an
 * hour and then cannot write its result has thrown the hour away. Commands call these first,
 * before the checkpoint folder is opened.
 *
 * - A file (`dump --out`, `--profile TRACE`) goes into a folder that must exist and be
 *   writable; the path must not be a folder. An existing file is overwritten.
 * - A folder (`--out` of analyze, knockout, ablate, patch, merge, demo; slurm's `--jobs`)
 *   is created with its parents when missing, so it must not be a file, and the nearest
 *   existing ancestor must be a writable folder.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.ts';

function kind(path: string): 'file' | 'folder' | null {
  try {
    return statSync(path).isDirectory() ? 'folder' : 'file';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new UserError(`${path}: ${(e as Error).message}`);
  }
}

function writable(flag: string, path: string, folder: string): void {
  try {
    accessSync(folder, constants.W_OK);
  } catch {
    throw new UserError(`${flag} ${path}: the folder ${folder} is not writable`);
  }
}

export function checkOutputFile(flag: string, path: string): void {
  if (kind(path) === 'folder') throw new UserError(`${flag} ${path} is a folder; give a file name`);
  const parent = dirname(resolve(path));
  const k = kind(parent);
  if (k !== 'folder') throw new UserError(`${flag} ${path}: ${k === 'file' ? `${parent} is a file, not a folder` : `the folder ${parent} does not exist`}`);
  writable(flag, path, parent);
}

export function checkOutputFolder(flag: string, path: string): void {
  if (kind(path) === 'file') throw new UserError(`${flag} ${path} is a file; give a folder (it is created when missing)`);
  let existing = resolve(path);
  while (kind(existing) === null) existing = dirname(existing);
  if (kind(existing) === 'file') throw new UserError(`${flag} ${path}: ${existing} is a file, so the folder cannot be created`);
  writable(flag, path, existing);
}
