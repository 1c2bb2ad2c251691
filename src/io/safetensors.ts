/**
 * Streaming safetensors reader.
 *
 * Written in-house because the npm `safetensors` package parses a whole in-memory
 * buffer and targets the browser only; a 7B checkpoint is 14 GB, so we read the
 * header, then each tensor by byte range from a ByteSource (a file handle under Node,
 * a Blob in the browser), a chunk at a time.
 *
 * Format (https://github.com/huggingface/safetensors): 8-byte little-endian header
 * length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, …,
 * "__metadata__": {…}}`, then the data area; offsets are relative to the data area.
 * Everything in the header is checked before any tensor byte is read.
 */
import { UserError } from '../errors.ts';
import type { ByteSource } from './byte-source.ts';

/** Bytes per element of each safetensors dtype. */
export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** Larger headers are refused unread: a real one is ~100 kB even for 7B models. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute offset of the first byte in the file. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Size of the data area (file size − 8 − header length). */
  dataBytes: number;
}

/** Called with consecutive pieces of a tensor; the bytes are only valid during the call. */
export type ChunkSink = (offsetInTensor: number, bytes: Uint8Array) => void | Promise<void>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Validates a header. `json` is the header text; `fileSize` bounds the data area.
 * Every error names the file and, where there is one, the tensor.
 */
export function parseHeader(file: string, fileSize: number, headerLength: number, json: string): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new UserError(`${file}: ${msg}`);
  };
  let root: unknown;
  try {
    root = JSON.parse(json);
  } catch (e) {
    fail(`safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) fail('safetensors header is not a JSON object');
  const dataBytes = fileSize - 8 - headerLength;
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(root as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as object)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      continue;
    }
    const bad = (msg: string): never => fail(`tensor "${name}": ${msg}`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad('header entry is not an object');
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      bad(`unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      bad(`data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const size = DTYPE_BYTES[dtype as SafetensorsDtype];
    const want = numel(dims) * size;
    if (want !== end - begin) {
      bad(`shape [${dims.join(', ')}] × ${dtype} (${size} bytes) needs ${want} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    if (end > dataBytes) {
      bad(`data_offsets [${begin}, ${end}] run past the end of the data area (${dataBytes} bytes; file truncated?)`);
    }
    tensors.set(name, { name, dtype: dtype as SafetensorsDtype, shape: dims, offset: 8 + headerLength + begin, byteLength: end - begin });
  }
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.offset < prev.offset + prev.byteLength) fail(`tensors "${prev.name}" and "${cur.name}" overlap in the data area`);
  }
  return { tensors, metadata, dataBytes };
}

/** One open .safetensors file. */
export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Reads and validates the header; the data area is not touched. */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const file = source.name;
    if (source.size < 8) throw new UserError(`${file}: ${source.size} bytes is too short for a safetensors file (the header length alone is 8 bytes)`);
    const lenBytes = await source.read(0, 8);
    const headerLength = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
    if (headerLength > MAX_HEADER_BYTES) {
      throw new UserError(`${file}: safetensors header claims ${headerLength} bytes, over the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file, or corrupt)`);
    }
    if (8 + headerLength > source.size) {
      throw new UserError(`${file}: safetensors header length ${headerLength} runs past the end of the file (${source.size} bytes; truncated?)`);
    }
    const raw = await source.read(8, headerLength);
    let json: string;
    try {
      json = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new UserError(`${file}: safetensors header is not valid UTF-8`);
    }
    const header = parseHeader(file, source.size, headerLength, json);
    return new SafetensorsFile(source, header.tensors, header.metadata);
  }

  get name(): string {
    return this.source.name;
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new UserError(`${this.name}: no tensor named "${name}"`);
    return t;
  }

  /** All bytes of one tensor (little-endian, as stored). */
  async readTensor(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.source.read(t.offset, t.byteLength);
  }

  /**
   * Streams bytes [begin, end) of a tensor (default: all of it) in pieces of at most
   * `chunkBytes`, so a tensor of any size costs two chunks of host memory: the next
   * piece is read into a second buffer while `onChunk` handles the current one
   * (reading and uploading overlap). Pieces arrive in order, one at a time.
   */
  async streamTensor(name: string, chunkBytes: number, onChunk: ChunkSink, range?: { begin: number; end: number }): Promise<void> {
    const t = this.info(name);
    const begin = range?.begin ?? 0;
    const end = range?.end ?? t.byteLength;
    if (!(0 <= begin && begin <= end && end <= t.byteLength)) {
      throw new RangeError(`${this.name}: range [${begin}, ${end}) outside tensor "${name}" (${t.byteLength} bytes)`);
    }
    if (!(chunkBytes > 0)) throw new RangeError(`chunkBytes must be positive, got ${chunkBytes}`);
    if (begin === end) return;
    const size = Math.min(chunkBytes, end - begin);
    const scratch = [new Uint8Array(size), new Uint8Array(size)];
    const read = (at: number, i: number) => this.source.read(t.offset + at, Math.min(chunkBytes, end - at), scratch[i & 1]);
    let next = read(begin, 0);
    for (let at = begin, i = 0; at < end; at += chunkBytes, i++) {
      const bytes = await next;
      if (at + chunkBytes < end) {
        next = read(at + chunkBytes, i + 1);
        next.catch(() => {}); // awaited on the next turn; don't report it unhandled if onChunk throws first
      }
      await onChunk(at, bytes);
    }
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
