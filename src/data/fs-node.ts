/** The data set readers' file access on disk (the CLI's): paths are resolved to absolute ones. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { DataFs } from './data-fs.ts';

export const nodeDataFs: DataFs = {
  readText(path) {
    let text: string;
    try {
      if (statSync(path).isDirectory()) throw new UserError(`${path}: is a directory, not a file`);
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  },
  list(dir) {
    try {
      return readdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw new UserError(`${dir}: not a directory`);
      throw new UserError(`${dir}: cannot list (${code ?? (e as Error).message})`);
    }
  },
  isFile(path) {
    try {
      return statSync(path).isFile();
    } catch {
      return false; // a dangling link: not a file we can read, and not worth failing over
    }
  },
  exists: existsSync,
  join,
  resolve,
};
