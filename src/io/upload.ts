/**
 * Streams one checkpoint tensor into GPU storage buffers, a chunk at a time, so the
 * host never holds more than one chunk of it.
 *
 * - F32 is copied as is.
 * - F16 stays packed (two halves per u32 word, as stored); kernels unpack with
 *   `unpack2x16float`, so no `shader-f16` is needed. The buffer is padded to a
 *   multiple of 4 bytes.
 * - BF16 has no WGSL type: it is widened to F32 on the host, chunk by chunk (exact:
 *   bf16 is the top half of an f32).
 *
 * Queued writes are flushed with an empty submit every FLUSH_BYTES and after each
 * tensor: Dawn keeps every pending write's staging copy until the next submit, so
 * without this a loader that never submits would hold a second copy of the model.
 *
 * A tensor larger than the device's buffer limits is refused, naming the tensor, its
 * size and the limit — unless `split` is set, in which case it is cut on whole rows
 * (first dimension) into several buffers, each within the limit.
 */
import { UserError } from '../errors.ts';
import type { Checkpoint } from './checkpoint.ts';
import { numel, type SafetensorsDtype, type TensorInfo } from './safetensors.ts';

export type GpuWeightDtype = 'f32' | 'f16';

const GPU_DTYPE: Partial<Record<SafetensorsDtype, GpuWeightDtype>> = { F32: 'f32', F16: 'f16', BF16: 'f32' };
const GPU_BYTES: Record<GpuWeightDtype, number> = { f32: 4, f16: 2 };

export const DEFAULT_CHUNK_BYTES = 4 << 20;
const FLUSH_BYTES = 64 << 20;

export interface UploadOptions {
  /** Cut a tensor that exceeds the limit into row ranges instead of throwing. */
  split?: boolean;
  /** Largest buffer to create; default (and cap): the device's maxStorageBufferBindingSize and maxBufferSize. */
  maxBytes?: number;
  /** Bytes read from disk per step (rounded down to a multiple of 4; default 4 MiB). */
  chunkBytes?: number;
}

export interface UploadedPart {
  buffer: GPUBuffer;
  /** Rows [start, end) of the first dimension that this buffer holds. */
  rows: [number, number];
  /** Shape of this part: the tensor's shape with the first dimension cut to the rows. */
  shape: number[];
  /** Bytes of data (the buffer may be larger by padding). */
  byteLength: number;
}

export interface UploadedTensor {
  name: string;
  dtype: GpuWeightDtype;
  shape: number[];
  /** The whole tensor, unless it was split: then the first part. */
  buffer: GPUBuffer;
  /** One part, or several (in row order) when split. */
  parts: UploadedPart[];
}

/** A planned buffer: rows [start, end) and byte ranges in the file and on the GPU. */
export interface PartPlan {
  rows: [number, number];
  fileBegin: number;
  fileEnd: number;
  gpuBytes: number;
}

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} bytes`;
}

/** How a tensor maps onto buffers of at most `limit` bytes. Pure; exported for tests. */
export function planUpload(t: TensorInfo, limit: number, split: boolean): { dtype: GpuWeightDtype; parts: PartPlan[] } {
  const dtype = GPU_DTYPE[t.dtype];
  if (!dtype) throw new UserError(`tensor ${t.name}: dtype ${t.dtype} cannot be used as a GPU weight (supported: F32, F16, BF16)`);
  const inSize = t.byteLength / Math.max(1, numel(t.shape));
  const rows = t.shape.length === 0 ? 1 : t.shape[0];
  const perRow = t.shape.length === 0 ? 1 : numel(t.shape.slice(1));
  const outRowBytes = perRow * GPU_BYTES[dtype];
  const inRowBytes = perRow * inSize;
  const total = rows * outRowBytes;
  if (total <= limit) return { dtype, parts: [{ rows: [0, rows], fileBegin: 0, fileEnd: t.byteLength, gpuBytes: total }] };

  const shape = `[${t.shape.join(', ')}] ${dtype}`;
  if (!split) {
    throw new UserError(
      `tensor ${t.name} ${shape} needs ${fmtBytes(total)} on the GPU, over this device's buffer limit of ${fmtBytes(limit)} ` +
        `(maxStorageBufferBindingSize / maxBufferSize); it has to be split by rows`,
    );
  }
  // keep every part's byte size a multiple of 4 so parts can be bound and written
  let rowsPerPart = Math.floor(limit / outRowBytes);
  while (rowsPerPart > 0 && (rowsPerPart * outRowBytes) % 4 !== 0) rowsPerPart--;
  if (rowsPerPart === 0) {
    throw new UserError(`tensor ${t.name} ${shape}: one row is ${fmtBytes(outRowBytes)}, over this device's buffer limit of ${fmtBytes(limit)}; it cannot be split by rows`);
  }
  const parts: PartPlan[] = [];
  for (let r = 0; r < rows; r += rowsPerPart) {
    const end = Math.min(rows, r + rowsPerPart);
    parts.push({ rows: [r, end], fileBegin: r * inRowBytes, fileEnd: end * inRowBytes, gpuBytes: (end - r) * outRowBytes });
  }
  return { dtype, parts };
}

/** Widens bf16 (little-endian u16 pairs in `src`) to f32 words in `dst`. */
function bf16ToF32(src: Uint8Array, dst: Uint32Array): Uint32Array {
  const halves = new Uint16Array(src.buffer, src.byteOffset, src.byteLength >> 1);
  const out = dst.subarray(0, halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = halves[i] << 16;
  return out;
}

/** Uploads tensor `name` of `ckpt` (see the file comment for dtypes and splitting). */
export async function uploadTensor(device: GPUDevice, ckpt: Checkpoint, name: string, opts: UploadOptions = {}): Promise<UploadedTensor> {
  const info = ckpt.info(name);
  const deviceLimit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const limit = Math.min(opts.maxBytes ?? deviceLimit, deviceLimit);
  const { dtype, parts: plan } = planUpload(info, limit, opts.split ?? false);
  const chunkBytes = Math.max(4, Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK_BYTES) / 4) * 4);
  const widen = info.dtype === 'BF16';
  const widened = widen ? new Uint32Array(chunkBytes / 2) : undefined;
  const tail = new Uint8Array(4);
  let queued = 0;
  const flushSometimes = (bytes: number) => {
    queued += bytes;
    if (queued >= FLUSH_BYTES) {
      device.queue.submit([]);
      queued = 0;
    }
  };

  const parts: UploadedPart[] = [];
  try {
    for (const p of plan) {
      const label = plan.length === 1 ? name : `${name}[${p.rows[0]}:${p.rows[1]}]`;
      const buffer = device.createBuffer({
        label,
        size: Math.max(4, Math.ceil(p.gpuBytes / 4) * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      parts.push({ buffer, rows: p.rows, shape: info.shape.length ? [p.rows[1] - p.rows[0], ...info.shape.slice(1)] : [], byteLength: p.gpuBytes });
      await ckpt.streamTensor(name, chunkBytes, (at, bytes) => {
        const offset = at - p.fileBegin;
        if (widened) {
          device.queue.writeBuffer(buffer, offset * 2, bf16ToF32(bytes, widened) as Uint32Array<ArrayBuffer>);
          flushSometimes(bytes.byteLength * 2);
          return;
        }
        // writeBuffer needs a multiple of 4 bytes: only an f16 tensor's last chunk can be short
        const whole = bytes.byteLength & ~3;
        if (whole) device.queue.writeBuffer(buffer, offset, bytes as Uint8Array<ArrayBuffer>, 0, whole);
        if (whole < bytes.byteLength) {
          tail.fill(0).set(bytes.subarray(whole));
          device.queue.writeBuffer(buffer, offset + whole, tail);
        }
        flushSometimes(bytes.byteLength);
      }, { begin: p.fileBegin, end: p.fileEnd });
    }
  } catch (e) {
    for (const part of parts) part.buffer.destroy();
    throw e;
  }
  device.queue.submit([]);
  return { name, dtype, shape: [...info.shape], buffer: parts[0].buffer, parts };
}
