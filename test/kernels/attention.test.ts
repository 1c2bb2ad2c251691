import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import {
  attention, attentionRow, decodeChunks, flashLayout, flashTile, pickVariant, type AttentionOptions, type AttentionRowOptions,
} from '../../src/ops/attention.ts';
import { attentionProbsRef, attentionRef, type AttentionShape } from '../reference/attention.ts';
import { getGpu, randn, relErr, rng } from '../helpers/gpu.ts';

// fp32 throughout; the reference accumulates in f64 over the full score matrix, so 1e-5
// (relative to the output's largest magnitude) bounds the kernel's f32 rounding only. The
// GPU-class variants round a few more times (one rescale of the running output per key
// tile, the merge of the key chunks) — each a relative 6e-8; measured ≤ 4e-7 here — so the
// same bound holds for every variant.
const TOL = 1e-5;

// Kernel paths: 'split' (a workgroup per query row, keys shared by its invocations) and
// 'rows' with R = 1, 2 (and 4 once) query rows per invocation. Sizes are chosen off the
// tile (4 keys), the workgroups (64 rows × R, 32 key slices) and the vec4 head dim (D = 9, 20, 88).
type Opts = Omit<AttentionOptions, 'mask'>;
const PATHS: Opts[] = [{ variant: 'split' }, { variant: 'rows', rowsPerInvocation: 1 }, { variant: 'rows', rowsPerInvocation: 2 }];
// GPU-class variants, forced (they run on any adapter): 'flash' with the device's default
// tile and a second one — 64 × 16 up to D = 64 (lavapipe's 32 KiB picks 32 × 32 or 16 × 32,
// so this covers 64-row blocks: 4 score rows and 2–4 output rows per invocation), 16 × 16
// above (64 rows do not fit 32 KiB there); 'decode' with its default chunks and with 7
// (chunk boundaries off the tiles, empty chunks for short Skv).
const gpuPaths = (D: number): Opts[] => [
  { variant: 'flash' },
  { variant: 'flash', tile: D <= 64 ? { rows: 64, keys: 16 } : { rows: 16, keys: 16 } },
  { variant: 'decode' },
  { variant: 'decode', chunks: 7 },
];
const GPU_PATHS = gpuPaths(64);
const pathName = (o: Opts) => {
  if (o.variant === 'flash' || o.variant === 'decode') return `${o.variant}${o.tile ? ` ${o.tile.rows}x${o.tile.keys}` : ''}${o.chunks ? ` chunks=${o.chunks}` : ''}`;
  return o.variant === 'split' ? 'split' : o.variant ? `rows R=${o.rowsPerInvocation}` : 'auto';
};
const ALL_PATHS = [...PATHS, ...GPU_PATHS];

interface Case extends AttentionShape {
  seed?: number;
}

function data(c: Case, amp = 1) {
  const s = c.seed ?? c.Sq * 31 + c.Skv * 7 + c.D;
  return {
    q: randn(c.Sq * c.Hq * c.D, s, amp),
    k: randn(c.Skv * c.Hkv * c.D, s + 1, amp),
    v: randn(c.Skv * c.Hkv * c.D, s + 2),
  };
}

async function check(c: Case, opts: Opts = {}, d = data(c), maskData?: Float32Array) {
  const gpu = await getGpu();
  const q = gpu.upload(d.q, [c.Sq, c.Hq, c.D], 'q');
  const k = gpu.upload(d.k, [c.Skv, c.Hkv, c.D], 'k');
  const v = gpu.upload(d.v, [c.Skv, c.Hkv, c.D], 'v');
  const mask = maskData ? gpu.upload(maskData, [c.Sq, c.Skv], 'mask') : undefined;
  const out = attention(gpu, q, k, v, { ...opts, mask });
  expect(out.shape).toEqual([c.Sq, c.Hq * c.D]);
  const got = await gpu.readF32(out);
  gpu.release(q, k, v, mask, out);
  const want = attentionRef(d.q, d.k, d.v, c, { ...opts, mask: maskData });
  expect(got.every(Number.isFinite)).toBe(true);
  expect(relErr(got, want)).toBeLessThanOrEqual(TOL);
  return got;
}

describe('attention.wgsl', () => {
  const selfShapes: Case[] = [
    { Sq: 1, Skv: 1, Hq: 1, Hkv: 1, D: 9 },
    { Sq: 7, Skv: 7, Hq: 2, Hkv: 2, D: 20 },
    { Sq: 33, Skv: 33, Hq: 4, Hkv: 2, D: 64 }, // grouped-query: 2 query heads per kv head
    { Sq: 130, Skv: 130, Hq: 8, Hkv: 1, D: 88 }, // multi-query; D = 88 as EVA ViT-g
  ];
  for (const c of selfShapes) {
    for (const path of [...PATHS, ...gpuPaths(c.D)]) {
      it(`bidirectional Sq=Skv=${c.Sq} Hq=${c.Hq} Hkv=${c.Hkv} D=${c.D} (${pathName(path)})`, () => check(c, path));
    }
  }

  for (const path of ALL_PATHS) {
    it(`causal self-attention Sq=Skv=33, GQA 4/2 (${pathName(path)})`, () => check({ Sq: 33, Skv: 33, Hq: 4, Hkv: 2, D: 64 }, { ...path, causal: true }));
  }
  for (const path of [...PATHS.slice(1), ...gpuPaths(128)]) {
    // 130 rows: two or three 'rows' workgroups, each with its own causal key range
    it(`causal self-attention Sq=Skv=130, D=128 (${pathName(path)})`, () => check({ Sq: 130, Skv: 130, Hq: 2, Hkv: 1, D: 128 }, { ...path, causal: true }));
  }
  it('causal self-attention Sq=Skv=300, D=20 (rows R=4: 256 rows per workgroup)', () =>
    check({ Sq: 300, Skv: 300, Hq: 2, Hkv: 2, D: 20 }, { variant: 'rows', rowsPerInvocation: 4, causal: true }));

  it('decode with a KV cache: Sq=1, qPos0 = Skv-1 (default), D=128, GQA 8/2', () =>
    check({ Sq: 1, Skv: 130, Hq: 8, Hkv: 2, D: 128 }, { causal: true }));
  it('decode through the rows path as well', () => check({ Sq: 1, Skv: 130, Hq: 8, Hkv: 2, D: 128 }, { causal: true, variant: 'rows' }));

  for (const path of ALL_PATHS) {
    it(`chunked prefill Sq=5, qPos0=10, Skv=15 (${pathName(path)})`, async () => {
      const c = { Sq: 5, Skv: 15, Hq: 4, Hkv: 4, D: 64 };
      await check(c, { ...path, causal: true, qPos0: 10 });
      // queries past the last key see every key
      await check(c, { ...path, causal: true, qPos0: 12 });
      // qPos0 = 0 with Sq < Skv: row i sees keys 0..i only
      await check(c, { ...path, causal: true, qPos0: 0 });
    });
  }

  for (const path of [{}, ...ALL_PATHS]) {
    it(`cross-attention Sq=32, Skv=50 (${pathName(path)})`, () => check({ Sq: 32, Skv: 50, Hq: 4, Hkv: 4, D: 64 }, path));
  }

  it('custom scale', () => check({ Sq: 33, Skv: 17, Hq: 2, Hkv: 1, D: 20 }, { scale: 0.37 }));

  it('large-magnitude scores stay finite and exact (online max subtraction)', async () => {
    // Small integers: q·k is exact in f32 and reaches ±1000, so exp(s) alone would overflow.
    const c = { Sq: 9, Skv: 37, Hq: 2, Hkv: 1, D: 16 };
    const r = rng(5);
    const int = (n: number) => Float32Array.from({ length: n }, () => Math.round(r() * 16 - 8));
    const d = { q: int(c.Sq * c.Hq * c.D), k: int(c.Skv * c.Hkv * c.D), v: randn(c.Skv * c.Hkv * c.D, 6) };
    const want = attentionProbsRef(d.q, d.k, c, { scale: 1 });
    let maxScoreGap = 0; // the softmax is far from uniform: some rows are almost one-hot
    for (let i = 0; i < want.length; i++) maxScoreGap = Math.max(maxScoreGap, want[i]);
    expect(maxScoreGap).toBeGreaterThan(0.999);
    for (const path of ALL_PATHS) await check(c, { ...path, scale: 1 }, d);
    await check(c, { scale: 1, causal: true }, d);
  });

  describe('additive mask', () => {
    const c = { Sq: 9, Skv: 21, Hq: 2, Hkv: 1, D: 16 };
    const NEG = -3.4028234663852886e38; // HF's torch.finfo(float32).min
    // rows 0..3 cannot see keys 2..7 (−inf), row 4 cannot see keys ≥ 5 (finfo.min), row 5
    // is fully blocked, row 6 gets a finite bias of −3 on keys 10..20, the rest is open
    const mask = new Float32Array(c.Sq * c.Skv);
    for (let i = 0; i < 4; i++) for (let j = 2; j < 8; j++) mask[i * c.Skv + j] = -Infinity;
    for (let j = 5; j < c.Skv; j++) mask[4 * c.Skv + j] = NEG;
    for (let j = 0; j < c.Skv; j++) mask[5 * c.Skv + j] = -Infinity;
    for (let j = 10; j < c.Skv; j++) mask[6 * c.Skv + j] = -3;

    for (const path of ALL_PATHS) {
      it(`blocks key ranges, zeroes a fully blocked row (${pathName(path)})`, async () => {
        const got = await check(c, path, data(c), mask);
        const row5 = got.subarray(5 * c.Hq * c.D, 6 * c.Hq * c.D);
        expect(Array.from(row5).every((x) => x === 0)).toBe(true);
      });
    }
    for (const path of [{}, ...GPU_PATHS]) {
      it(`with causality and a KV cache position (${pathName(path)})`, () => check(c, { ...path, causal: true, qPos0: 12 }, data(c), mask));
      it(`row 0 fully blocked by causality + mask (qPos0 = 0 sees key 0 only) (${pathName(path)})`, async () => {
        const m = new Float32Array(c.Sq * c.Skv);
        m[0] = -Infinity;
        const got = await check(c, { ...path, causal: true, qPos0: 0 }, data(c), m);
        expect(Array.from(got.subarray(0, c.Hq * c.D)).every((x) => x === 0)).toBe(true);
      });
    }
  });

  it('reads only kvLen rows of a larger KV-cache buffer', async () => {
    const gpu = await getGpu();
    const [cap, Skv, Hkv, Hq, D] = [40, 23, 2, 4, 20];
    const kAll = randn(cap * Hkv * D, 11);
    const vAll = randn(cap * Hkv * D, 12);
    for (let i = Skv * Hkv * D; i < kAll.length; i++) kAll[i] = vAll[i] = 1e30; // poison past kvLen
    for (const Sq of [1, 4]) {
      const qd = randn(Sq * Hq * D, 13);
      const want = attentionRef(qd, kAll.subarray(0, Skv * Hkv * D), vAll.subarray(0, Skv * Hkv * D), { Sq, Skv, Hq, Hkv, D }, { causal: true });
      for (const path of [{}, ...GPU_PATHS]) {
        const out = attention(gpu, gpu.upload(qd, [Sq, Hq, D], 'q'), gpu.upload(kAll, [cap, Hkv, D], 'k'), gpu.upload(vAll, [cap, Hkv, D], 'v'), { ...path, causal: true, kvLen: Skv });
        expect(relErr(await gpu.readF32(out), want), `Sq=${Sq} ${pathName(path)}`).toBeLessThanOrEqual(TOL);
      }
    }
  });

  it('takes [S, H·D] projections with the heads options', async () => {
    const gpu = await getGpu();
    const c = { Sq: 6, Skv: 6, Hq: 4, Hkv: 2, D: 8 };
    const d = data(c);
    const out = attention(gpu, gpu.upload(d.q, [c.Sq, c.Hq * c.D], 'q'), gpu.upload(d.k, [c.Skv, c.Hkv * c.D], 'k'), gpu.upload(d.v, [c.Skv, c.Hkv * c.D], 'v'), {
      heads: c.Hq,
      kvHeads: c.Hkv,
      causal: true,
    });
    expect(relErr(await gpu.readF32(out), attentionRef(d.q, d.k, d.v, c, { causal: true }))).toBeLessThanOrEqual(TOL);
  });

  it('refuses bad shapes', async () => {
    const gpu = await getGpu();
    const t = (shape: number[]) => gpu.upload(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, 't');
    expect(() => attention(gpu, t([2, 3, 8]), t([2, 2, 8]), t([2, 2, 8]))).toThrow(/not a multiple of 2 key\/value heads/);
    expect(() => attention(gpu, t([2, 2, 8]), t([2, 2, 4]), t([2, 2, 4]))).toThrow(/head dims differ/);
    expect(() => attention(gpu, t([2, 1, 136]), t([2, 1, 136]), t([2, 1, 136]))).toThrow(/outside 1\.\.128/);
    expect(() => attention(gpu, t([2, 2, 8]), t([3, 2, 8]), t([3, 2, 8]), { mask: t([3, 3]) })).toThrow(/mask .* must be f32 \[2, 3\]/);
    expect(() => attention(gpu, t([2, 2, 8]), t([3, 2, 8]), t([3, 2, 8]), { kvLen: 4 })).toThrow(/kvLen 4/);
    expect(() => attention(gpu, t([2, 16]), t([3, 16]), t([3, 16]))).toThrow(/heads option/);
  });
});

describe('GPU-class variants: attention_flash.wgsl (flash, decode) + attention_decode_merge.wgsl', () => {
  const NEG = -3.4028234663852886e38;

  // the head-dim loops run to the compile-time DV4: every D is its own unrolled pipeline
  for (const D of [5, 64, 80, 128]) {
    it(`flash: compile-time head dim D = ${D}, causal, 70 rows × 75 keys (off the tiles)`, () =>
      check({ Sq: 70, Skv: 75, Hq: 2, Hkv: 1, D }, { variant: 'flash', causal: true, qPos0: 5 }), 900_000);
  }

  it('flash: D = 128, causal, GQA 8/2, 150 rows (off every tile), default and 16 × 16 tiles', async () => {
    const c = { Sq: 150, Skv: 150, Hq: 8, Hkv: 2, D: 128 };
    await check(c, { variant: 'flash', causal: true });
    await check(c, { variant: 'flash', causal: true, tile: { rows: 16, keys: 16 } });
  });
  it('flash: prefill after a KV cache (Skv > Sq), causal with qPos0 = Skv − Sq and qPos0 = 40', async () => {
    const c = { Sq: 70, Skv: 200, Hq: 4, Hkv: 4, D: 64 };
    await check(c, { variant: 'flash', causal: true }); // rows at 130..199
    await check(c, { variant: 'flash', causal: true, qPos0: 40 }); // keys 110.. are seen by no row
  });
  it('flash: head dims that are not a multiple of 4 (10: the tiny checkpoints, 88: EVA), sizes off the tiles', async () => {
    await check({ Sq: 97, Skv: 45, Hq: 2, Hkv: 2, D: 10 }, { variant: 'flash' });
    await check({ Sq: 77, Skv: 95, Hq: 2, Hkv: 1, D: 88 }, { variant: 'flash', causal: true, qPos0: 3 });
  });
  it('flash: a 64-row block with mask rows fully blocked (−inf and finfo.min) among open ones', async () => {
    const c = { Sq: 70, Skv: 40, Hq: 2, Hkv: 1, D: 20 };
    const mask = new Float32Array(c.Sq * c.Skv);
    mask.fill(-Infinity, 3 * c.Skv, 4 * c.Skv); // row 3
    mask.fill(NEG, 65 * c.Skv, 66 * c.Skv); // row 65 (second block)
    for (let i = 10; i < 20; i++) mask.fill(NEG, i * c.Skv + 5, i * c.Skv + 37);
    const got = await check(c, { variant: 'flash', tile: { rows: 64, keys: 16 } }, data(c), mask);
    for (const r of [3, 65]) expect(Array.from(got.subarray(r * c.Hq * c.D, (r + 1) * c.Hq * c.D)).every((x) => x === 0)).toBe(true);
  });

  it('decode: Sq = 1 over a long KV cache (1500 keys), D = 128, GQA 8/2; default chunks and 3', async () => {
    const c = { Sq: 1, Skv: 1500, Hq: 8, Hkv: 2, D: 128 };
    await check(c, { variant: 'decode', causal: true });
    await check(c, { variant: 'decode', causal: true, chunks: 3 });
  });
  it('decode: fewer keys than chunks (empty chunks drop out of the merge)', async () => {
    await check({ Sq: 1, Skv: 5, Hq: 2, Hkv: 1, D: 128 }, { variant: 'decode', causal: true, chunks: 16 });
    await check({ Sq: 1, Skv: 1, Hq: 2, Hkv: 2, D: 64 }, { variant: 'decode', chunks: 4 });
  });
  it('decode: 8-row tiles, causal rows whose first chunks are all they see (qPos0 = 0)', async () => {
    await check({ Sq: 8, Skv: 300, Hq: 4, Hkv: 2, D: 64 }, { variant: 'decode', causal: true });
    await check({ Sq: 3, Skv: 300, Hq: 2, Hkv: 1, D: 64 }, { variant: 'decode', causal: true, qPos0: 0, chunks: 5 });
  });
  it("decode: the Q-Former's 32 queries over 257 image tokens (cross-attention)", () => check({ Sq: 32, Skv: 257, Hq: 4, Hkv: 4, D: 64 }, { variant: 'decode' }));
  it('decode: small head dims (8, 10) where the key groups outnumber the staged rows', async () => {
    await check({ Sq: 5, Skv: 30, Hq: 2, Hkv: 1, D: 8 }, { variant: 'decode' });
    await check({ Sq: 1, Skv: 77, Hq: 2, Hkv: 2, D: 10 }, { variant: 'decode', tile: { rows: 1, keys: 16 } });
  });
  it('decode: a fully blocked row across every chunk writes 0', async () => {
    const c = { Sq: 2, Skv: 100, Hq: 2, Hkv: 1, D: 16 };
    const mask = new Float32Array(c.Sq * c.Skv);
    mask.fill(-Infinity, 0, c.Skv);
    const got = await check(c, { variant: 'decode', chunks: 6 }, data(c), mask);
    expect(Array.from(got.subarray(0, c.Hq * c.D)).every((x) => x === 0)).toBe(true);
  });
  it('no keys in use (kvLen = 0): every variant writes 0', async () => {
    const gpu = await getGpu();
    const t = (rows: number, name: string) => gpu.upload(randn(rows * 2 * 16, rows), [rows, 2, 16], name);
    for (const variant of ['flash', 'decode'] as const) {
      const got = await gpu.readF32(attention(gpu, t(3, 'q'), t(4, 'k'), t(4, 'v'), { variant, kvLen: 0 }));
      expect(Array.from(got).every((x) => x === 0), variant).toBe(true);
    }
  });

  it('refuses a tile that does not fit the workgroup memory, and bad chunk counts', async () => {
    const gpu = await getGpu();
    const t = (shape: number[]) => gpu.upload(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, 't');
    const big = { rows: 64, keys: 64 }; // 64 × 64 at D = 128: over 48 KiB
    expect(flashLayout(128, big, false).bytes).toBeGreaterThan(gpu.limits.maxComputeWorkgroupStorageSize);
    expect(() => attention(gpu, t([4, 1, 128]), t([4, 1, 128]), t([4, 1, 128]), { variant: 'flash', tile: big })).toThrow(/no 'flash' 64×64 tile .* fits/);
    expect(() => attention(gpu, t([4, 1, 128]), t([4, 1, 128]), t([4, 1, 128]), { variant: 'flash', tile: { rows: 3, keys: 16 } })).toThrow(/no 'flash' 3×16 tile/);
    expect(() => attention(gpu, t([1, 1, 8]), t([4, 1, 8]), t([4, 1, 8]), { variant: 'decode', chunks: 0 })).toThrow(/chunks 0/);
  });
});

describe('pickVariant: old variants for the CPU class, flash/decode for the GPU class', () => {
  let cpu: Gpu;
  let gpu: Gpu;
  // stand-ins for a device's limits: only the fields the picker reads
  const limited = (g: Gpu, bytes: number) =>
    Object.create(g, { limits: { value: { maxComputeWorkgroupStorageSize: bytes, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256 } } }) as Gpu;

  it('by class and shape', async () => {
    cpu = await createNodeGpu({ kernels: 'cpu', profile: true });
    gpu = await createNodeGpu({ kernels: 'gpu', profile: true });
    expect([1, 32, 63, 64, 600].map((Sq) => pickVariant(cpu, Sq, 128))).toEqual(['split', 'split', 'split', 'rows', 'rows']);
    expect([1, 8, 32, 33, 600].map((Sq) => pickVariant(gpu, Sq, 128))).toEqual(['decode', 'decode', 'decode', 'flash', 'flash']);
    // a device with too little workgroup memory for any tile keeps the old variants
    expect([1, 600].map((Sq) => pickVariant(limited(gpu, 8192), Sq, 128))).toEqual(['split', 'rows']);
  });

  it('tiles by workgroup memory: 48 KiB (NVIDIA) and lavapipe', () => {
    const nv = limited(gpu, 49152);
    expect(flashTile(nv, 'flash', 600, 88)).toEqual({ rows: 64, keys: 32 });
    expect(flashTile(nv, 'flash', 600, 128)).toEqual({ rows: 32, keys: 32 });
    expect(flashTile(nv, 'decode', 1, 128)).toEqual({ rows: 1, keys: 64 });
    expect(flashTile(nv, 'decode', 5, 128)).toEqual({ rows: 8, keys: 64 });
    expect(flashTile(nv, 'decode', 32, 64)).toEqual({ rows: 32, keys: 32 });
    for (const [Sq, D] of [[600, 64], [600, 128], [1, 128], [32, 64]]) {
      const tile = flashTile(gpu, Sq > 32 ? 'flash' : 'decode', Sq, D)!;
      expect(flashLayout(D, tile, Sq <= 32).bytes).toBeLessThanOrEqual(gpu.limits.maxComputeWorkgroupStorageSize);
    }
    // decode: enough workgroups for a GPU, never more chunks than tiles of keys
    expect(decodeChunks(1, 32, 600, 64)).toBe(10);
    expect(decodeChunks(1, 32, 5, 64)).toBe(1);
    expect(decodeChunks(1, 32, 8192, 64)).toBe(16);
  });

  it('the default dispatches are the picked kernels (profiler names), and agree with the reference', async () => {
    const cases: [Gpu, number, string[]][] = [[gpu, 1, ['attention.decode', 'attention.decode.merge']], [gpu, 40, ['attention.flash']], [cpu, 1, ['attention.split']], [cpu, 70, ['attention.rows1']]];
    for (const [dev, Sq, want] of cases) {
      const c = { Sq, Skv: 70, Hq: 4, Hkv: 2, D: 64 };
      const d = data(c);
      const before = dev.profiler!.records.length;
      const out = attention(dev, dev.upload(d.q, [Sq, 4, 64], 'q'), dev.upload(d.k, [70, 2, 64], 'k'), dev.upload(d.v, [70, 2, 64], 'v'), { causal: true });
      expect(relErr(await dev.readF32(out), attentionRef(d.q, d.k, d.v, c, { causal: true }))).toBeLessThanOrEqual(TOL);
      const kernels = dev.profiler!.records.slice(before).map((r) => r.kernel);
      expect(kernels).toEqual(want);
    }
  });
});

describe('attention_row.wgsl (attentionRow)', () => {
  async function checkRow(c: Case, opts: Omit<AttentionRowOptions, 'mask'> = {}, maskData?: Float32Array) {
    const gpu = await getGpu();
    const d = data(c);
    const mask = maskData ? gpu.upload(maskData, [c.Sq, c.Skv], 'mask') : undefined;
    const alpha = attentionRow(gpu, gpu.upload(d.q, [c.Sq, c.Hq, c.D], 'q'), gpu.upload(d.k, [c.Skv, c.Hkv, c.D], 'k'), { ...opts, mask });
    expect(alpha.shape).toEqual([c.Hq, c.Skv]);
    const got = await gpu.readF32(alpha);
    const P = attentionProbsRef(d.q, d.k, c, { ...opts, mask: maskData });
    const i = opts.query ?? c.Sq - 1;
    const want = new Float64Array(c.Hq * c.Skv);
    for (let h = 0; h < c.Hq; h++) for (let j = 0; j < c.Skv; j++) want[h * c.Skv + j] = P[(h * c.Sq + i) * c.Skv + j];
    expect(got.every(Number.isFinite)).toBe(true);
    expect(relErr(got, want)).toBeLessThanOrEqual(TOL);
    return got;
  }

  it('last query row (default), bidirectional, GQA 4/2, 130 keys', async () => {
    const c = { Sq: 7, Skv: 130, Hq: 4, Hkv: 2, D: 64 };
    const a = await checkRow(c);
    for (let h = 0; h < c.Hq; h++) {
      const sum = a.subarray(h * c.Skv, (h + 1) * c.Skv).reduce((x, y) => x + y, 0);
      expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
    }
  });
  it('chosen query row, causal with qPos0 (chunked prefill)', () => checkRow({ Sq: 5, Skv: 15, Hq: 4, Hkv: 4, D: 20 }, { query: 2, causal: true, qPos0: 10 }));
  it('decode row, causal, D = 9 (scalar loads), multi-query', () => checkRow({ Sq: 1, Skv: 33, Hq: 8, Hkv: 1, D: 9 }, { causal: true }));
  it('mask: blocked keys get 0, a fully blocked row is all 0', async () => {
    const c = { Sq: 3, Skv: 70, Hq: 2, Hkv: 1, D: 88 };
    const mask = new Float32Array(c.Sq * c.Skv);
    for (let j = 10; j < 40; j++) mask[2 * c.Skv + j] = -Infinity; // last row: keys 10..39 blocked
    mask.fill(-Infinity, 0, c.Skv); // row 0 fully blocked
    const a = await checkRow(c, {}, mask);
    expect(a[10]).toBe(0);
    const z = await checkRow(c, { query: 0 }, mask);
    expect(Array.from(z).every((x) => x === 0)).toBe(true);
  });
  it('custom scale, query 0, cross-attention sizes', () => checkRow({ Sq: 32, Skv: 50, Hq: 2, Hkv: 2, D: 64 }, { query: 0, scale: 0.2 }));
  it('refuses a query outside q', async () => {
    const gpu = await getGpu();
    const t = (shape: number[]) => gpu.upload(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, 't');
    expect(() => attentionRow(gpu, t([2, 1, 4]), t([3, 1, 4]), { query: 2 })).toThrow(/query 2 is outside 0\.\.1/);
  });
});
