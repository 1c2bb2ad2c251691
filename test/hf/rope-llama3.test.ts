/**
 * RoPE with `rope_type: "llama3"` (src/ops/rope.ts) against transformers'
 * `ROPE_INIT_FUNCTIONS["llama3"]`: the inverse frequencies bit for bit, for the real
 * Llama-3-8B head (128 wide, θ 500000, factor 8, low/high_freq_factor 1/4, context 8192)
 * and the tiny parity checkpoints' (16 wide, context 64: one frequency kept, one
 * interpolated, six divided), and HF's attention scaling of 1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ropeInvFreq } from '../../src/ops/rope.ts';
import { nextReference } from './llava-next-cases.ts';

interface Rope {
  head_dim: number;
  parameters: { rope_theta: number; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number };
  inv_freq: number[];
  attention_factor: number;
}

let ropes: Rope[];
beforeAll(async () => {
  ropes = JSON.parse(readFileSync(join(await nextReference(), 'llama3.json'), 'utf8')).rope_llama3;
}, 900_000);

it('llama3 inverse frequencies equal transformers\' bit for bit', () => {
  expect(ropes.map((r) => r.head_dim)).toEqual([128, 16]);
  for (const r of ropes) {
    const p = r.parameters;
    const scaling = { type: 'llama3' as const, factor: p.factor, lowFreqFactor: p.low_freq_factor, highFreqFactor: p.high_freq_factor, originalMaxPositionEmbeddings: p.original_max_position_embeddings };
    const ours = ropeInvFreq(r.head_dim, p.rope_theta, scaling);
    expect(Array.from(ours)).toEqual(r.inv_freq);
    expect(r.attention_factor).toBe(1);
    // the scaling changes something (else the test could not fail on a no-op)
    const plain = ropeInvFreq(r.head_dim, p.rope_theta);
    const changed = ours.filter((v, i) => v !== plain[i]).length;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(r.head_dim / 2);
  }
});
