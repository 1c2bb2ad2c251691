/**
 * Streaming safetensors writer (Node): the header is computed from the tensors'
 * dtypes and shapes up front, then each tensor's bytes are produced and written one
 * at a time, so writing a 5 GB shard holds one tensor in memory, not the file.
 * Used by make-tiny / make-random and by `phaselens dump`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DTYPE_BYTES, numel, type SafetensorsDtype } from './safetensors.ts';

export interface TensorSpec {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/** Data for one tensor: all at once, or as consecutive chunks. */
export type TensorBytes = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export function tensorBytes(t: TensorSpec): number {
  return numel(t.shape) * DTYPE_BYTES[t.dtype];
}

/**
 * The header bytes for `tensors` stored back to back in the given order, padded
 * with spaces to a multiple of 8 (as the reference implementation does) so the
 * data area starts aligned.
 */
export function encodeHeader(tensors: readonly TensorSpec[], metadata?: Record<string, string>): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) throw new Error(`safetensors: duplicate or reserved tensor name "${t.name}"`);
    const n = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + n] };
    at += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.byteLength), true);
  out.set(body, 8);
  return out;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.byteLength; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done);
    done += bytesWritten;
  }
}

/**
 * Writes a .safetensors file. `data(t)` is called once per tensor, in order, and must
 * yield exactly `tensorBytes(t)` bytes.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorSpec[],
  data: (t: TensorSpec) => TensorBytes | Promise<TensorBytes>,
  metadata?: Record<string, string>,
): Promise<number> {
  const handle = await open(path, 'w');
  try {
    const header = encodeHeader(tensors, metadata);
    await writeAll(handle, header);
    let total = header.byteLength;
    for (const t of tensors) {
      const want = tensorBytes(t);
      const bytes = await data(t);
      let got = 0;
      const chunks = bytes instanceof Uint8Array ? [bytes] : bytes;
      for await (const chunk of chunks) {
        got += chunk.byteLength;
        if (got > want) break;
        await writeAll(handle, chunk);
      }
      if (got !== want) throw new Error(`safetensors: tensor "${t.name}" [${t.shape.join(', ')}] ${t.dtype} needs ${want} bytes, got ${got}`);
      total += want;
    }
    return total;
  } finally {
    await handle.close();
  }
}
