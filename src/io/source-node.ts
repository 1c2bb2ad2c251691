/** Node byte sources: positioned reads on a file handle, and folders on disk. */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { ByteSource, DirectorySource } from './byte-source.ts';

class FileSource implements ByteSource {
  constructor(
    readonly name: string,
    readonly size: number,
    private handle: FileHandle,
  ) {}

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new UserError(`${this.name}: read of ${length} bytes at ${offset} runs past the end of the file (${this.size} bytes)`);
    }
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
    let done = 0;
    // a positioned read may return fewer bytes than asked for; loop until full
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new UserError(`${this.name}: file shrank while reading (wanted ${length} bytes at ${offset})`);
      done += bytesRead;
    }
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function openOrMissing(path: string): Promise<ByteSource | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw new UserError(`cannot open ${path}: ${(e as Error).message}`);
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new UserError(`${path} is not a regular file`);
  }
  return new FileSource(path, stat.size, handle);
}

/** Opens a file for positioned reads. */
export async function openFileSource(path: string): Promise<ByteSource> {
  const source = await openOrMissing(path);
  if (!source) throw new UserError(`${path}: no such file`);
  return source;
}

/** A checkpoint folder on disk. */
export function nodeDirectory(path: string): DirectorySource {
  const dir = resolve(path);
  return {
    name: path,
    open: (file) => openOrMissing(join(dir, file)),
    async readText(file) {
      try {
        return await readFile(join(dir, file), 'utf8');
      } catch (e) {
        if (isMissing(e)) return undefined;
        throw new UserError(`cannot read ${join(path, file)}: ${(e as Error).message}`);
      }
    },
  };
}
