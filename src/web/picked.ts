/**
 * Files the user picked, as a map from '/'-separated paths relative to the picked folder
 * to File objects. Three ways in, one shape out: showDirectoryPicker's handle, an
 * `<input webkitdirectory>` FileList (each File's webkitRelativePath starts with the
 * folder's own name, which is cut off), or plain multi-selected files (their names).
 * Nothing is read here; Files are read later, range by range (src/io/source-blob.ts).
 */
import type { DirectorySource } from '../io/byte-source.ts';
import { blobDirectory } from '../io/source-blob.ts';

export interface Picked {
  /** The folder's name (or "selected files"), for messages. */
  name: string;
  files: Map<string, Blob>;
}

/** From an `<input type=file>` (with or without webkitdirectory). */
export function pickedFromList(list: ArrayLike<File>): Picked {
  const files = new Map<string, Blob>();
  let name = 'selected files';
  for (const f of Array.from(list)) {
    const rel = f.webkitRelativePath;
    if (!rel) {
      files.set(f.name, f);
      continue;
    }
    const cut = rel.indexOf('/');
    name = rel.slice(0, cut);
    files.set(rel.slice(cut + 1), f);
  }
  return { name, files };
}

/** From showDirectoryPicker(): every file below the folder. */
export async function pickedFromHandle(dir: FileSystemDirectoryHandle): Promise<Picked> {
  const files = new Map<string, Blob>();
  const walk = async (d: FileSystemDirectoryHandle, prefix: string) => {
    // entries() is missing from TypeScript's DOM types; Chromium has it
    for await (const [name, h] of (d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
      if (h.kind === 'directory') await walk(h as FileSystemDirectoryHandle, `${prefix}${name}/`);
      else files.set(`${prefix}${name}`, await (h as FileSystemFileHandle).getFile());
    }
  };
  await walk(dir, '');
  return { name: dir.name, files };
}

/** A checkpoint folder over picked files, for openModel. */
export function pickedDirectory(p: Picked): DirectorySource {
  return blobDirectory(p.files, p.name);
}
