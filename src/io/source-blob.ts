/**
 * Browser byte sources: a File or Blob read range by range with Blob.slice(), so a
 * 5 GB shard picked with <input type=file> is never loaded whole. No Node imports.
 */
import { UserError } from '../errors.ts';
import type { ByteSource, DirectorySource } from './byte-source.ts';

/** Reads ranges of a Blob (or File). */
export function blobSource(blob: Blob, name = (blob as File).name ?? 'blob'): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length, into) {
      if (offset < 0 || length < 0 || offset + length > blob.size) {
        throw new UserError(`${name}: read of ${length} bytes at ${offset} runs past the end of the file (${blob.size} bytes)`);
      }
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (!into) return bytes;
      into.set(bytes);
      return into.subarray(0, length);
    },
    close: async () => {},
  };
}

/**
 * A checkpoint folder from files the user picked (e.g. a directory upload); keys are
 * file names relative to the folder (`webkitRelativePath` minus the folder part).
 */
export function blobDirectory(files: ReadonlyMap<string, Blob>, name = 'checkpoint'): DirectorySource {
  return {
    name,
    async open(file) {
      const blob = files.get(file);
      return blob && blobSource(blob, `${name}/${file}`);
    },
    async readText(file) {
      return files.get(file)?.text();
    },
  };
}
