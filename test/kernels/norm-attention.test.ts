import { describe, expect, it } from 'vitest';
import { headGram, normAttention } from '../../src/ops/norm-attention.ts';
import { roundF16, toF16 } from '../../src/gpu/half.ts';
import { normAttentionRef } from '../reference/norm-attention.ts';
import { getGpu, randn, rng, relErr } from '../helpers/gpu.ts';

// Tolerance: fp32 relErr ≤ 1e-5 (max abs error / max |ref| over the tensor) for both
// outputs. The f16-weight cases compare against the reference on the same f16-rounded
// W_O, so only f32 accumulation order differs and the same tolerance applies. The
// reference forms every f^h(x_j) with plain f64 loops (no Gram matrix, no matmul), so the
// kernel's decompositions (u W_Oᵀ for the layer norm, vᵀ G_h v for the head norms) are
// checked, not assumed.
const TOL = 1e-5;

/** Softmax-like rows: positive, summing to 1 per head, with a few exact zeros (blocked keys). */
function weights(Hq: number, Skv: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(Hq * Skv);
  for (let h = 0; h < Hq; h++) {
    let s = 0;
    for (let j = 0; j < Skv; j++) {
      const x = (j * 7 + h) % 5 === 4 ? 0 : Math.exp(3 * r());
      a[h * Skv + j] = x;
      s += x;
    }
    for (let j = 0; j < Skv; j++) a[h * Skv + j] /= s || 1;
  }
  return a;
}

interface Case {
  Hq: number;
  Hkv: number;
  Dh: number;
  d: number;
  Skv: number;
  /** rows of the v buffer (a KV cache larger than Skv) */
  cap?: number;
  /** v as [cap, Hkv·Dh] instead of [cap, Hkv, Dh] */
  flat?: boolean;
}

// GRAM: 4×4 outputs per invocation, vec4 loads when Dh % 4 == 0; HEADS: 8 keys per
// workgroup, 32/64 invocations over Dh ≤ 128; WEIGHTED / ROW_NORM / matmul tiles: the
// sizes below are not multiples of any of those.
const cases: Case[] = [
  { Hq: 1, Hkv: 1, Dh: 1, d: 1, Skv: 1 },
  { Hq: 4, Hkv: 2, Dh: 6, d: 30, Skv: 13, flat: true },
  { Hq: 8, Hkv: 2, Dh: 16, d: 64, Skv: 40 },
  { Hq: 6, Hkv: 6, Dh: 12, d: 100, Skv: 21, cap: 30 },
  { Hq: 4, Hkv: 1, Dh: 33, d: 70, Skv: 9, cap: 12, flat: true },
  { Hq: 2, Hkv: 2, Dh: 128, d: 96, Skv: 17 },
  { Hq: 8, Hkv: 2, Dh: 128, d: 1024, Skv: 24, flat: true },
];

describe('norm_attention.wgsl (normAttention)', () => {
  for (const c of cases) {
    const { Hq, Hkv, Dh, d, Skv } = c;
    const cap = c.cap ?? Skv;
    for (const wdt of ['f32', 'f16'] as const) {
      it(`${wdt} W_O Hq=${Hq} Hkv=${Hkv} Dh=${Dh} d=${d} Skv=${Skv}${c.cap ? ` cap=${cap}` : ''}${c.flat ? ' v 2-D' : ''}`, async () => {
        const gpu = await getGpu();
        const seed = Hq * 1000 + Dh * 10 + d;
        const alpha = weights(Hq, Skv, seed);
        const v = randn(cap * Hkv * Dh, seed + 1, 2);
        v.fill(0, 2 * Hkv * Dh, 3 * Hkv * Dh); // a zero value row: every norm of key 2 is 0
        const w = randn(d * Hq * Dh, seed + 2, 0.3);
        const wt = wdt === 'f16' ? gpu.upload(toF16(w), [d, Hq * Dh], 'o_proj', 'f16') : gpu.upload(w, [d, Hq * Dh], 'o_proj');
        const vt = gpu.upload(v, c.flat ? [cap, Hkv * Dh] : [cap, Hkv, Dh], 'v');
        const at = gpu.upload(alpha, [Hq, Skv], 'alpha');
        const r = normAttention(gpu, at, vt, wt);
        expect(r.head.shape).toEqual([Hq, Skv]);
        expect(r.layer.shape).toEqual([Skv]);
        const head = await gpu.readF32(r.head);
        const layer = await gpu.readF32(r.layer);
        const want = normAttentionRef(alpha, v, wdt === 'f16' ? roundF16(w) : w, Hq, Hkv, Dh, d, Skv);
        expect(relErr(layer, want.layer)).toBeLessThanOrEqual(TOL);
        expect(relErr(head, want.head)).toBeLessThanOrEqual(TOL);
        if (Skv > 2) expect(layer[2]).toBe(0);
        gpu.release(wt, vt, at, r.head, r.layer);
      });
    }
  }

  it('writes row l of [L, Hq, Skv] / [L, Skv] results, with a reused Gram matrix', async () => {
    const gpu = await getGpu();
    const [Hq, Hkv, Dh, d, Skv, L] = [4, 2, 8, 48, 11, 3];
    const w = randn(d * Hq * Dh, 5, 0.3);
    const wt = gpu.upload(w, [d, Hq * Dh], 'o_proj');
    const gram = headGram(gpu, wt, Hq);
    const head = gpu.tensor([L, Hq, Skv], 'f32', 'head');
    const layer = gpu.tensor([L, Skv], 'f32', 'layer');
    const inputs = Array.from({ length: L }, (_, l) => ({ alpha: weights(Hq, Skv, 10 + l), v: randn(Skv * Hkv * Dh, 20 + l) }));
    for (const l of [1, 2, 0]) {
      const { alpha, v } = inputs[l];
      normAttention(gpu, gpu.upload(alpha, [Hq, Skv], 'alpha'), gpu.upload(v, [Skv, Hkv, Dh], 'v'), wt, { gram, head, layer, row: l });
    }
    const gotHead = await gpu.readF32(head);
    const gotLayer = await gpu.readF32(layer);
    for (let l = 0; l < L; l++) {
      const want = normAttentionRef(inputs[l].alpha, inputs[l].v, w, Hq, Hkv, Dh, d, Skv);
      expect(relErr(gotHead.subarray(l * Hq * Skv, (l + 1) * Hq * Skv), want.head)).toBeLessThanOrEqual(TOL);
      expect(relErr(gotLayer.subarray(l * Skv, (l + 1) * Skv), want.layer)).toBeLessThanOrEqual(TOL);
    }
  });

  it('headGram is W_O^hᵀ W_O^h', async () => {
    const gpu = await getGpu();
    const [Hq, Dh, d] = [3, 5, 17];
    const w = randn(d * Hq * Dh, 7);
    const got = await gpu.readF32(headGram(gpu, gpu.upload(w, [d, Hq * Dh], 'w'), Hq));
    const want = new Float64Array(Hq * Dh * Dh);
    for (let h = 0; h < Hq; h++)
      for (let e = 0; e < Dh; e++)
        for (let f = 0; f < Dh; f++) {
          let s = 0;
          for (let o = 0; o < d; o++) s += w[o * Hq * Dh + h * Dh + e] * w[o * Hq * Dh + h * Dh + f];
          want[(h * Dh + e) * Dh + f] = s;
        }
    expect(relErr(got, want)).toBeLessThanOrEqual(TOL);
  });

  it('refuses inconsistent shapes', async () => {
    const gpu = await getGpu();
    const t = (shape: number[], name: string) => gpu.tensor(shape, 'f32', name);
    const alpha = t([4, 5], 'alpha');
    const w = t([16, 4 * 8], 'w');
    expect(() => normAttention(gpu, alpha, t([5, 3, 8], 'v'), w)).toThrow(/not a multiple of 3 value heads/);
    expect(() => normAttention(gpu, alpha, t([5, 2, 6], 'v'), w)).toThrow(/head dim 6/);
    expect(() => normAttention(gpu, alpha, t([4, 2, 8], 'v'), w)).toThrow(/fewer rows/);
    expect(() => normAttention(gpu, alpha, t([5, 2, 8], 'v'), t([16, 30], 'w'))).toThrow(/not a multiple of 4 heads/);
    expect(() => normAttention(gpu, alpha, t([5, 2, 8], 'v'), w, { layer: t([2, 5], 'layer'), row: 2 })).toThrow(/row 2 is outside/);
    expect(() => normAttention(gpu, alpha, t([5, 2, 8], 'v'), w, { gram: t([4, 8, 7], 'g') })).toThrow(/gram/);
  });
});
