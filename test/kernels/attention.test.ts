import { describe, expect, it } from 'vitest';
import { attention, attentionRow, type AttentionOptions, type AttentionRowOptions } from '../../src/ops/attention.ts';
import { attentionProbsRef, attentionRef, type AttentionShape } from '../reference/attention.ts';
import { getGpu, randn, relErr, rng } from '../helpers/gpu.ts';

// fp32 throughout; the reference accumulates in f64 over the full score matrix, so 1e-5
// (relative to the output's largest magnitude) bounds the kernel's f32 rounding only.
const TOL = 1e-5;

// Kernel paths: 'split' (a workgroup per query row, keys shared by its invocations) and
// 'rows' with R = 1, 2 (and 4 once) query rows per invocation. Sizes are chosen off the
// tile (4 keys), the workgroups (64 rows × R, 32 key slices) and the vec4 head dim (D = 9, 20, 88).
type Opts = Omit<AttentionOptions, 'mask'>;
const PATHS: Opts[] = [{ variant: 'split' }, { variant: 'rows', rowsPerInvocation: 1 }, { variant: 'rows', rowsPerInvocation: 2 }];
const pathName = (o: Opts) => (o.variant === 'split' ? 'split' : o.variant ? `rows R=${o.rowsPerInvocation}` : 'auto');

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
    for (const path of PATHS) {
      it(`bidirectional Sq=Skv=${c.Sq} Hq=${c.Hq} Hkv=${c.Hkv} D=${c.D} (${pathName(path)})`, () => check(c, path));
    }
  }

  for (const path of PATHS) {
    it(`causal self-attention Sq=Skv=33, GQA 4/2 (${pathName(path)})`, () => check({ Sq: 33, Skv: 33, Hq: 4, Hkv: 2, D: 64 }, { ...path, causal: true }));
  }
  for (const path of PATHS.slice(1)) {
    // 130 rows: two or three 'rows' workgroups, each with its own causal key range
    it(`causal self-attention Sq=Skv=130, D=128 (${pathName(path)})`, () => check({ Sq: 130, Skv: 130, Hq: 2, Hkv: 1, D: 128 }, { ...path, causal: true }));
  }
  it('causal self-attention Sq=Skv=300, D=20 (rows R=4: 256 rows per workgroup)', () =>
    check({ Sq: 300, Skv: 300, Hq: 2, Hkv: 2, D: 20 }, { variant: 'rows', rowsPerInvocation: 4, causal: true }));

  it('decode with a KV cache: Sq=1, qPos0 = Skv-1 (default), D=128, GQA 8/2', () =>
    check({ Sq: 1, Skv: 130, Hq: 8, Hkv: 2, D: 128 }, { causal: true }));
  it('decode through the rows path as well', () => check({ Sq: 1, Skv: 130, Hq: 8, Hkv: 2, D: 128 }, { causal: true, variant: 'rows' }));

  for (const path of PATHS) {
    it(`chunked prefill Sq=5, qPos0=10, Skv=15 (${pathName(path)})`, async () => {
      const c = { Sq: 5, Skv: 15, Hq: 4, Hkv: 4, D: 64 };
      await check(c, { ...path, causal: true, qPos0: 10 });
      // queries past the last key see every key
      await check(c, { ...path, causal: true, qPos0: 12 });
      // qPos0 = 0 with Sq < Skv: row i sees keys 0..i only
      await check(c, { ...path, causal: true, qPos0: 0 });
    });
  }

  for (const path of [{}, ...PATHS]) {
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
    for (const path of PATHS) await check(c, { ...path, scale: 1 }, d);
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

    for (const path of PATHS) {
      it(`blocks key ranges, zeroes a fully blocked row (${pathName(path)})`, async () => {
        const got = await check(c, path, data(c), mask);
        const row5 = got.subarray(5 * c.Hq * c.D, 6 * c.Hq * c.D);
        expect(Array.from(row5).every((x) => x === 0)).toBe(true);
      });
    }
    it('with causality and a KV cache position', () => check(c, { causal: true, qPos0: 12 }, data(c), mask));
    it('row 0 fully blocked by causality + mask (qPos0 = 0 sees key 0 only)', async () => {
      const m = new Float32Array(c.Sq * c.Skv);
      m[0] = -Infinity;
      const got = await check(c, { causal: true, qPos0: 0 }, data(c), m);
      expect(Array.from(got.subarray(0, c.Hq * c.D)).every((x) => x === 0)).toBe(true);
    });
  });

  it('reads only kvLen rows of a larger KV-cache buffer', async () => {
    const gpu = await getGpu();
    const [cap, Skv, Hkv, Hq, D] = [40, 23, 2, 4, 20];
    const kAll = randn(cap * Hkv * D, 11);
    const vAll = randn(cap * Hkv * D, 12);
    for (let i = Skv * Hkv * D; i < kAll.length; i++) kAll[i] = vAll[i] = 1e30; // poison past kvLen
    for (const Sq of [1, 4]) {
      const qd = randn(Sq * Hq * D, 13);
      const out = attention(gpu, gpu.upload(qd, [Sq, Hq, D], 'q'), gpu.upload(kAll, [cap, Hkv, D], 'k'), gpu.upload(vAll, [cap, Hkv, D], 'v'), { causal: true, kvLen: Skv });
      const want = attentionRef(qd, kAll.subarray(0, Skv * Hkv * D), vAll.subarray(0, Skv * Hkv * D), { Sq, Skv, Hq, Hkv, D }, { causal: true });
      expect(relErr(await gpu.readF32(out), want)).toBeLessThanOrEqual(TOL);
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
