/**
 * `inspect --check-values`: every floating-point tensor of a checkpoint scanned for NaN and
 * ±Inf on the host, streamed in 16 MiB chunks (a 14 GB checkpoint never sits in memory).
 * A float is non-finite when its exponent bits are all ones: F32 0x7f800000, F16 0x7c00,
 * BF16 0x7f80.
 */
import type { Checkpoint } from './checkpoint.ts';

const CHUNK = 16 << 20;
const EXPONENT: Record<string, { bytes: 2 | 4; mask: number }> = { F32: { bytes: 4, mask: 0x7f800000 }, F16: { bytes: 2, mask: 0x7c00 }, BF16: { bytes: 2, mask: 0x7f80 } };

export interface ValueCheck {
  tensors: number;
  values: number;
  /** Tensors holding non-finite values, with how many. */
  bad: { name: string; count: number }[];
}

export async function checkValues(ckpt: Checkpoint, onTensor?: (done: number, total: number) => void): Promise<ValueCheck> {
  const out: ValueCheck = { tensors: 0, values: 0, bad: [] };
  const names = [...ckpt.tensors.keys()].filter((n) => EXPONENT[ckpt.info(n).dtype]);
  for (const name of names) {
    const { bytes, mask } = EXPONENT[ckpt.info(name).dtype];
    let count = 0;
    await ckpt.streamTensor(name, CHUNK, (_, chunk) => {
      const words = bytes === 4 ? new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.byteLength >> 2) : new Uint16Array(chunk.buffer, chunk.byteOffset, chunk.byteLength >> 1);
      for (let i = 0; i < words.length; i++) if ((words[i] & mask) === mask) count++;
      out.values += words.length;
    });
    out.tensors++;
    if (count) out.bad.push({ name, count });
    onTensor?.(out.tensors, names.length);
  }
  return out;
}
