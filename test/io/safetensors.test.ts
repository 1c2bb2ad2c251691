/**
 * The safetensors reader on real files in a temp dir: round trip through the writer,
 * chunked streaming, the browser Blob source, and the bad-input corpus — every
 * malformed file must give a UserError naming the file (and tensor), never a crash,
 * a hang or a huge allocation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import type { ByteSource } from '../../src/io/byte-source.ts';
import { MAX_HEADER_BYTES, SafetensorsFile } from '../../src/io/safetensors.ts';
import { encodeHeader, writeSafetensors } from '../../src/io/safetensors-write.ts';
import { blobSource } from '../../src/io/source-blob.ts';
import { openFileSource } from '../../src/io/source-node.ts';

const dir = mkdtempSync(join(tmpdir(), 'phaselens-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(bytes: Uint8Array): string {
  const path = join(dir, `f${n++}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}

/** A file from a header object (as JSON) and a data area of `dataBytes` bytes. */
function rawFile(header: unknown, dataBytes: number, headerText = JSON.stringify(header)): string {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return file(out);
}

async function open(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(await openFileSource(path));
}

async function openError(path: string): Promise<string> {
  const source = await openFileSource(path);
  try {
    await SafetensorsFile.open(source);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  } finally {
    await source.close();
  }
  throw new Error('expected an error');
}

describe('safetensors round trip', () => {
  it('writes and reads back tensors of several dtypes, with metadata', async () => {
    const a = new Float32Array([1, -2.5, 3, 4, 5, 6]);
    const b = new Uint16Array([0x3c00, 0xc000, 0x7bff]); // f16 1, -2, 65504
    const path = join(dir, 'rt.safetensors');
    await writeSafetensors(
      path,
      [
        { name: 'a', dtype: 'F32', shape: [2, 3] },
        { name: 'b.weight', dtype: 'F16', shape: [3] },
        { name: 'scalar', dtype: 'I64', shape: [] },
        { name: 'empty', dtype: 'BF16', shape: [0, 4] },
      ],
      (t) => ({ a: new Uint8Array(a.buffer), 'b.weight': new Uint8Array(b.buffer), scalar: new Uint8Array(8).fill(7), empty: new Uint8Array(0) })[t.name]!,
      { format: 'pt' },
    );
    const f = await open(path);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.tensors.keys()]).toEqual(['a', 'b.weight', 'scalar', 'empty']);
    expect(f.info('a')).toMatchObject({ dtype: 'F32', shape: [2, 3], byteLength: 24 });
    expect(new Float32Array((await f.readTensor('a')).slice().buffer)).toEqual(a);
    expect(new Uint16Array((await f.readTensor('b.weight')).slice().buffer)).toEqual(b);
    expect(f.info('scalar').byteLength).toBe(8);
    expect((await f.readTensor('empty')).byteLength).toBe(0);
    // the data area starts 8-byte aligned, as the reference writer pads the header
    expect((f.info('a').offset - 8) % 8).toBe(0);
    await expect(f.readTensor('nope')).rejects.toThrow(/rt\.safetensors: no tensor named "nope"/);
    await f.close();
  });

  it('streams a tensor in chunks that cover it exactly, alternating two buffers', async () => {
    const values = new Uint8Array(1000).map((_, i) => i & 0xff);
    const path = join(dir, 'chunks.safetensors');
    await writeSafetensors(path, [{ name: 'x', dtype: 'U8', shape: [1000] }], () => [values.subarray(0, 300), values.subarray(300)]);
    const f = await open(path);
    const seen: [number, number][] = [];
    const got = new Uint8Array(1000);
    const buffers = new Set<ArrayBufferLike>();
    await f.streamTensor('x', 128, (at, bytes) => {
      seen.push([at, bytes.byteLength]);
      buffers.add(bytes.buffer);
      got.set(bytes, at);
    });
    expect(got).toEqual(values);
    expect(seen.length).toBe(8);
    expect(seen.at(-1)).toEqual([896, 104]);
    expect(buffers.size).toBe(2);
    const part: number[] = [];
    await f.streamTensor('x', 64, (at, bytes) => void part.push(at, bytes.byteLength), { begin: 100, end: 200 });
    expect(part).toEqual([100, 64, 164, 36]);
    await f.close();
  });

  it('writer refuses data of the wrong length', async () => {
    await expect(writeSafetensors(join(dir, 'bad.safetensors'), [{ name: 'x', dtype: 'F32', shape: [4] }], () => new Uint8Array(12))).rejects.toThrow(/"x" \[4\] F32 needs 16 bytes, got 12/);
  });

  it('reads the same file through the browser Blob source', async () => {
    const header = encodeHeader([{ name: 'w', dtype: 'F32', shape: [2] }]);
    const data = new Float32Array([0.5, -0.25]);
    const blob = new Blob([header, new Uint8Array(data.buffer)]);
    const f = await SafetensorsFile.open(blobSource(blob, 'picked.safetensors'));
    expect(new Float32Array((await f.readTensor('w')).slice().buffer)).toEqual(data);
    await expect(blobSource(blob, 'picked').read(0, blob.size + 1)).rejects.toThrow(/picked: read of/);
  });
});

describe('safetensors bad-input corpus', () => {
  const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

  it('file shorter than the length prefix', async () => {
    expect(await openError(file(new Uint8Array(5)))).toMatch(/f\d+\.safetensors: 5 bytes is too short for a safetensors file/);
  });

  it('truncated data area', async () => {
    const path = rawFile(good, 10);
    expect(await openError(path)).toMatch(/tensor "w": data_offsets \[0, 16\] run past the end of the data area \(10 bytes; file truncated\?\)/);
  });

  it('header length past the end of the file', async () => {
    const out = new Uint8Array(64);
    new DataView(out.buffer).setBigUint64(0, 1000n, true);
    expect(await openError(file(out))).toMatch(/header length 1000 runs past the end of the file \(64 bytes; truncated\?\)/);
  });

  it('a 100 MB header claim is refused without reading it', async () => {
    const out = new Uint8Array(16);
    new DataView(out.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    let asked = 0;
    const source: ByteSource = {
      name: 'huge.safetensors',
      size: 200_000_000, // claims to be big enough
      async read(offset, length) {
        asked += length;
        return out.subarray(offset, offset + length);
      },
      close: async () => {},
    };
    await expect(SafetensorsFile.open(source)).rejects.toThrow(/huge\.safetensors: safetensors header claims 100000001 bytes, over the 100000000-byte limit/);
    expect(asked).toBe(8);
    // and an absurd u64 (e.g. a random binary file)
    new DataView(out.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
    expect(await openError(file(out))).toMatch(/header claims \d+ bytes, over the/);
  });

  it('invalid JSON, and JSON that is not an object', async () => {
    expect(await openError(rawFile(null, 0, '{"w": {"dtype": "F32",'))).toMatch(/header is not valid JSON/);
    expect(await openError(rawFile([1, 2], 0))).toMatch(/header is not a JSON object/);
    expect(await openError(rawFile(null, 0, '{"w": 3}'))).toMatch(/tensor "w": header entry is not an object/);
  });

  it('invalid UTF-8 in the header', async () => {
    const out = new Uint8Array(8 + 4);
    new DataView(out.buffer).setBigUint64(0, 4n, true);
    out.set([0x7b, 0xff, 0xfe, 0x7d], 8);
    expect(await openError(file(out))).toMatch(/header is not valid UTF-8/);
  });

  it('unknown dtype', async () => {
    expect(await openError(rawFile({ w: { dtype: 'F12', shape: [2], data_offsets: [0, 3] } }, 3))).toMatch(/tensor "w": unknown dtype "F12" \(known: F64, F32, F16, BF16/);
  });

  it('shape and byte size disagree', async () => {
    expect(await openError(rawFile({ w: { dtype: 'F16', shape: [3, 3], data_offsets: [0, 16] } }, 16))).toMatch(
      /tensor "w": shape \[3, 3\] × F16 \(2 bytes\) needs 18 bytes but data_offsets \[0, 16\] hold 16/,
    );
  });

  it('bad shapes and offsets', async () => {
    expect(await openError(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0))).toMatch(/tensor "w": shape \[-1\] is not a list of non-negative integers/);
    expect(await openError(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4))).toMatch(/tensor "w": data_offsets \[4,0\] is not a pair/);
    expect(await openError(rawFile({ w: { dtype: 'F32', shape: [1] } }, 4))).toMatch(/tensor "w": data_offsets undefined is not a pair/);
  });

  it('out-of-range offsets', async () => {
    expect(await openError(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [16, 20] } }, 8))).toMatch(/tensor "a": data_offsets \[16, 20\] run past the end of the data area \(8 bytes/);
  });

  it('overlapping tensors', async () => {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expect(await openError(rawFile(header, 12))).toMatch(/tensors "a" and "b" overlap in the data area/);
  });

  it('tolerates __metadata__ and gaps between tensors', async () => {
    const header = { __metadata__: { format: 'pt', n: 3 }, a: { dtype: 'U8', shape: [2], data_offsets: [4, 6] } };
    const f = await open(rawFile(header, 8));
    expect(f.metadata).toEqual({ format: 'pt', n: '3' });
    expect(f.info('a').byteLength).toBe(2);
    await f.close();
    expect(await openError(rawFile({ __metadata__: 'x' }, 0))).toMatch(/__metadata__ is not an object/);
  });

  it('a file that is not there', async () => {
    await expect(openFileSource(join(dir, 'missing.safetensors'))).rejects.toThrow(/missing\.safetensors: no such file/);
  });
});
