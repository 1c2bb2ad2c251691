/**
 * Node-only image reading for the browser-safe decoder image.ts: reads a file and turns
 * a missing or unreadable one into a UserError. (A checkpoint's tokenizer and processor
 * files are read through a DirectorySource: model-files.ts.)
 */
import { readFileSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { decodeImage, type DecodeOptions, type RgbImage } from './image.ts';

/** Read and decode a PNG or JPEG file to RGB (see image.ts for the checks and conversions). */
export function readImageFile(path: string, opts: Omit<DecodeOptions, 'name'> = {}): RgbImage {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) throw new UserError(`${path}: is a directory, not an image file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeImage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { ...opts, name: path });
}
