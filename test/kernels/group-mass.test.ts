/**
 * The per-group attention mass kernel (shaders/group_mass.wgsl) on the real device against
 * the f64 reference, over key counts that do and do not divide its workgroup (32 on a CPU
 * adapter, 128 on a GPU), one or several heads, keys in no group, and a result row other
 * than 0. Tolerance: a sum of ≤ H·Skv f32 terms in [0, 1] whose total is ≤ H, divided by
 * H: |Δ| ≤ 1e-6 (f32 ε · log2(terms) of a value ≤ 1, with room).
 */
import { describe, expect, it } from 'vitest';
import { groupMass, keyGroups } from '../../src/ops/group-mass.ts';
import { groupMassRef } from '../reference/group-mass.ts';
import { getGpu, rng } from '../helpers/gpu.ts';

const TOL = 1e-6;

/** Rows that sum to 1 per head, as softmax weights do. */
function weights(H: number, Skv: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(H * Skv);
  for (let h = 0; h < H; h++) {
    let s = 0;
    for (let j = 0; j < Skv; j++) s += a[h * Skv + j] = Math.exp(3 * r());
    for (let j = 0; j < Skv; j++) a[h * Skv + j] /= s;
  }
  return a;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

const CASES = [
  { name: 'one key, one head', H: 1, Skv: 1, groups: [[0]] },
  { name: '3 heads, 7 keys, keys in no group', H: 3, Skv: 7, groups: [[6], [5], [1, 2, 3]] },
  { name: '4 heads, 130 keys (not a multiple of the workgroup), 5 groups', H: 4, Skv: 130, groups: [[0], range(1, 65), [65], [129], range(66, 129).filter((j) => j % 3)] },
  { name: '2 heads, 300 keys, an empty group', H: 2, Skv: 300, groups: [[299], [], range(0, 299)] },
];

describe('group_mass kernel vs the f64 reference', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await getGpu();
      const host = weights(c.H, c.Skv, c.Skv * 7 + c.H);
      const alpha = gpu.upload(host, [c.H, c.Skv], 'alpha');
      const group = keyGroups(gpu, c.Skv, c.groups);
      const out = gpu.tensor([3, c.groups.length], 'f32', 'mass');
      groupMass(gpu, alpha, group, out, 2);
      const got = await gpu.readF32(out);
      gpu.release(alpha, group, out);
      const want = groupMassRef(host, c.H, c.Skv, c.groups);
      const G = c.groups.length;
      expect(Array.from(got.subarray(0, 2 * G)).every((v) => v === 0), 'other rows untouched').toBe(true);
      want.forEach((w, g) => expect(Math.abs(got[2 * G + g] - w), `group ${g}: ${got[2 * G + g]} vs ${w}`).toBeLessThanOrEqual(TOL));
    });
  }

  it('refuses a key in two groups, or outside the keys', async () => {
    const gpu = await getGpu();
    expect(() => keyGroups(gpu, 4, [[1], [1, 2]])).toThrow(/key 1 is in groups 0 and 1/);
    expect(() => keyGroups(gpu, 4, [[4]])).toThrow(/outside 0..3/);
  });
});
