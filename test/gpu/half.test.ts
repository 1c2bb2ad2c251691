/**
 * 16-bit floats against numpy's float16 and torch's bfloat16 (test/reference/half_ref.py in
 * the venv of .ci/hf-venv.sh), bit for bit:
 * - f32 → f16 / bf16 on the host (src/gpu/half.ts: every `--dtype f16` upload and the f16
 *   references of the kernel tests): every finite f16 value, every midpoint between two
 *   neighbours (ties go to the even one) and the f32 values one ulp either side of it, the
 *   subnormal range down to half the smallest subnormal (2^-25, a tie that rounds to 0),
 *   f32 subnormals, overflow (65520 = the tie above 65504 → inf; f32 max → inf), ±0, ±inf,
 *   NaNs of both signs with several payloads, and random bit patterns;
 * - f16 / bf16 → f32, all 65536 patterns each, on the host (half.ts) and on the device
 *   (convert.wgsl).
 * NaN is compared as NaN (f16: with its sign, which numpy keeps; torch's bf16 NaN has none).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hfPython } from '../../bench/hf.ts';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/gpu/half.ts';
import { bf16ToF32, f16ToF32, uploadBf16 } from '../../src/ops/convert.ts';
import { getGpu, rng } from '../helpers/gpu.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const valueOf = (b: number) => ((u32[0] = b), f32[0]);

/** The f32 inputs, as bit patterns. */
function inputs(): Uint32Array {
  const out: number[] = [];
  for (let h = 0; h < 0x7c00; h++) {
    // h and the midpoint to its neighbour above (exact in f32), with one f32 ulp either side
    const v = bitsOf(f16BitsToF32(h));
    const mid = bitsOf((f16BitsToF32(h) + (h + 1 === 0x7c00 ? 65536 : f16BitsToF32(h + 1))) / 2);
    for (const b of [v, mid - 1, mid, mid + 1]) out.push(b, b | 0x80000000);
  }
  const specials = [
    0x00000001, 0x007fffff, 0x00800000, // f32 subnormals and the smallest normal
    bitsOf(2 ** -25), bitsOf(2 ** -25) + 1, bitsOf(2 ** -25) - 1, bitsOf(2 ** -26), bitsOf(3 * 2 ** -26),
    bitsOf(65504), bitsOf(65519), bitsOf(65520), bitsOf(65520) - 1, bitsOf(65536), 0x7f7fffff, // overflow
    0x7f800000, 0x7f800001, 0x7fc00000, 0x7fffffff, 0x7fa00000, 0x7f802000, // inf, NaNs (signalling, quiet, payloads)
  ];
  for (const b of specials) out.push(b, b | 0x80000000);
  const r = rng(16);
  for (let i = 0; i < 20000; i++) out.push(Math.floor(r() * 2 ** 32) >>> 0);
  return Uint32Array.from(out);
}

function reference(x: Uint32Array) {
  const input = new Uint8Array(4 + 4 * x.length);
  new DataView(input.buffer).setUint32(0, x.length, true);
  input.set(new Uint8Array(x.buffer), 4);
  const r = spawnSync(hfPython(), [join(import.meta.dirname, '../reference/half_ref.py')], { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`half_ref.py failed: ${r.stderr}`);
  const buf = r.stdout.buffer.slice(r.stdout.byteOffset, r.stdout.byteOffset + r.stdout.byteLength);
  const n = x.length;
  return {
    f16: new Uint16Array(buf, 0, n),
    bf16: new Uint16Array(buf, 2 * n, n),
    f16ToF32: new Uint32Array(buf.slice(4 * n, 4 * n + 4 * 65536)),
    bf16ToF32: new Uint32Array(buf.slice(4 * n + 4 * 65536)),
  };
}

const nan16 = (h: number, expBits: number, manBits: number) => (h & expBits) === expBits && (h & manBits) !== 0;
const nan32 = (b: number) => (b & 0x7fffffff) > 0x7f800000;
const hex = (v: number, w: number) => `0x${v.toString(16).padStart(w, '0')}`;

/** First mismatches: [what, input, got, want]. */
function mismatches(n: number, got: (i: number) => number, want: (i: number) => number, same: (g: number, w: number) => boolean, show: (i: number) => string): string[] {
  const bad: string[] = [];
  for (let i = 0; i < n && bad.length < 5; i++) if (!same(got(i), want(i))) bad.push(show(i));
  return bad;
}

describe('16-bit floats vs numpy float16 / torch bfloat16', () => {
  const x = inputs();
  const ref = reference(x);
  const every = Uint16Array.from({ length: 65536 }, (_, i) => i);

  it(`f32 → f16 rounds as numpy (${x.length} values)`, () => {
    const got = x.map((b) => f32ToF16Bits(valueOf(b)));
    // NaN stays NaN with its sign; every other value bit for bit
    const same = (g: number, w: number) => g === w || (nan16(g, 0x7c00, 0x3ff) && nan16(w, 0x7c00, 0x3ff) && (g & 0x8000) === (w & 0x8000));
    expect(mismatches(x.length, (i) => got[i], (i) => ref.f16[i], same, (i) => `${valueOf(x[i])} (${hex(x[i], 8)}): ${hex(got[i], 4)}, numpy ${hex(ref.f16[i], 4)}`)).toEqual([]);
    // the cases the header names are in the set, and come out as IEEE says
    expect(f32ToF16Bits(2 ** -25)).toBe(0);
    expect(f32ToF16Bits(valueOf(bitsOf(2 ** -25) + 1))).toBe(1);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
  });

  it(`f32 → bf16 rounds as torch (${x.length} values)`, () => {
    const got = x.map((b) => f32ToBf16Bits(valueOf(b)));
    const same = (g: number, w: number) => g === w || (nan16(g, 0x7f80, 0x7f) && nan16(w, 0x7f80, 0x7f));
    expect(mismatches(x.length, (i) => got[i], (i) => ref.bf16[i], same, (i) => `${valueOf(x[i])} (${hex(x[i], 8)}): ${hex(got[i], 4)}, torch ${hex(ref.bf16[i], 4)}`)).toEqual([]);
  });

  const sameF32 = (g: number, w: number) => g === w || (nan32(g) && nan32(w));
  it('f16 → f32, all 65536 patterns, host and device, as numpy', async () => {
    const host = Uint32Array.from(every, (h) => bitsOf(f16BitsToF32(h)));
    expect(mismatches(65536, (i) => host[i], (i) => ref.f16ToF32[i], sameF32, (i) => `host ${hex(i, 4)}: ${hex(host[i], 8)}, numpy ${hex(ref.f16ToF32[i], 8)}`)).toEqual([]);
    const gpu = await getGpu();
    const dev = new Uint32Array((await gpu.readF32(f16ToF32(gpu, gpu.upload(every, [65536], 'every_f16', 'f16')))).buffer);
    expect(mismatches(65536, (i) => dev[i], (i) => ref.f16ToF32[i], sameF32, (i) => `device ${hex(i, 4)}: ${hex(dev[i], 8)}, numpy ${hex(ref.f16ToF32[i], 8)}`)).toEqual([]);
  });

  it('bf16 → f32, all 65536 patterns, host and device, as torch', async () => {
    const host = Uint32Array.from(every, (h) => bitsOf(bf16BitsToF32(h)));
    expect(mismatches(65536, (i) => host[i], (i) => ref.bf16ToF32[i], sameF32, (i) => `host ${hex(i, 4)}: ${hex(host[i], 8)}, torch ${hex(ref.bf16ToF32[i], 8)}`)).toEqual([]);
    const gpu = await getGpu();
    const dev = new Uint32Array((await gpu.readF32(bf16ToF32(gpu, uploadBf16(gpu, every, 'every_bf16'), [65536]))).buffer);
    expect(mismatches(65536, (i) => dev[i], (i) => ref.bf16ToF32[i], sameF32, (i) => `device ${hex(i, 4)}: ${hex(dev[i], 8)}, torch ${hex(ref.bf16ToF32[i], 8)}`)).toEqual([]);
  });
});
