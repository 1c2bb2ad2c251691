/**
 * How a forward is recorded (src/gpu/context.ts): the prefill and each decode step of both
 * families go into one submission (the readback of the next token), their dispatches into
 * shared compute passes (a new one only after a copy), and a steady decode step creates no
 * buffer and no bind group. The numbers are bit-identical to a device that gives every
 * dispatch a pass of its own (the profiler's per-dispatch timestamps), as before, and
 * `generate`, which records each step before the last token is read back, gives the same tokens.
 * Instrument: the context's `recorded` and `created` counters. Tiny make-tiny checkpoints.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { generate, greedyNext } from '../../src/models/generate.ts';
import type { Vlm, VlmInput } from '../../src/models/vlm.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const FAMILIES = ['llava', 'instructblip'] as const;
const work = mkdtempSync(join(tmpdir(), 'phaselens-decode-recording-'));

beforeAll(async () => {
  for (const arch of FAMILIES) await makeTiny({ arch, out: join(work, arch), seed: 3 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Counts = Gpu['recorded'];
const minus = (a: Counts, b: Counts): Counts => ({ dispatches: a.dispatches - b.dispatches, copies: a.copies - b.copies, passes: a.passes - b.passes, submissions: a.submissions - b.submissions });

interface Run {
  /** recorded per forward: the prefill, then each decode step (each with its greedy readback) */
  counts: Counts[];
  /** buffers and bind groups created by each forward */
  created: { buffers: number; bindGroups: number }[];
  tokens: number[];
  /** last-row hidden state after each forward, as read back */
  hidden: Float32Array[];
}

/** The prefill and `steps` decode steps, as `generate` records them, counted one by one. */
async function run(gpu: Gpu, m: Vlm, x: VlmInput, steps: number): Promise<Run> {
  const lm = m.languageModel;
  const cache = lm.createCache(gpu, x.ids.length + steps + 1);
  const out: Run = { counts: [], created: [], tokens: [], hidden: [] };
  let hidden: Tensor | undefined;
  for (let s = 0; s <= steps; s++) {
    await gpu.sync();
    const r0 = { ...gpu.recorded };
    const c0 = { ...gpu.created };
    if (!hidden) hidden = m.forward(gpu, x, { cache });
    else {
      const ids = gpu.upload(Int32Array.of(out.tokens.at(-1)!), [1], 'next_id');
      const e = lm.embed(gpu, ids);
      gpu.release(hidden);
      hidden = lm.forward(gpu, e, { pos0: cache.length, cache });
      gpu.release(ids, e);
    }
    out.tokens.push(await greedyNext(gpu, lm, hidden));
    out.counts.push(minus(gpu.recorded, r0));
    out.created.push({ buffers: gpu.created.buffers - c0.buffers, bindGroups: gpu.created.bindGroups - c0.bindGroups });
    const [S, d] = hidden.shape;
    const all = await gpu.readF32(hidden);
    out.hidden.push(all.slice((S - 1) * d));
  }
  gpu.release(hidden, ...cache.k, ...cache.v);
  return out;
}

describe('one submission per forward, shared passes', () => {
  for (const arch of FAMILIES) {
    it(`${arch}: prefill and decode steps in one submission each, passes only after copies, steady steps create nothing, bit-identical to a pass per dispatch`, async () => {
      const gpu = await createNodeGpu();
      const m = await loadDir(gpu, join(work, arch));
      const x = prepareFile(m, { prompt: 'What is in the picture?', chat: m.capabilities.chatTemplate }, IMAGE);
      await run(gpu, m, x, 2); // warm: pipelines, pooled buffers
      const got = await run(gpu, m, x, 4);
      for (const c of got.counts) {
        expect(c.submissions).toBe(1);
        expect(c.passes).toBeLessThanOrEqual(c.copies + 1);
        expect(c.dispatches).toBeGreaterThan(3 * c.passes); // tens of dispatches, a handful of passes
      }
      // from the third decode step on, every buffer and bind group is the last step's (the first
      // steps settle which pooled buffer each tensor name gets)
      for (const c of got.created.slice(3)) expect(c).toEqual({ buffers: 0, bindGroups: 0 });
      // generate records each step ahead of the last token's readback: the same tokens
      expect((await generate(gpu, m, x, got.tokens.length, undefined, { stopAtEos: false })).tokens).toEqual(got.tokens);

      const ref = await createNodeGpu({ profile: true }); // every dispatch in a pass of its own
      const mr = await loadDir(ref, join(work, arch));
      const want = await run(ref, mr, x, 4);
      for (const c of want.counts) expect(c.passes).toBe(c.dispatches);
      expect(got.tokens).toEqual(want.tokens);
      got.hidden.forEach((h, i) => expect(Array.from(h)).toEqual(Array.from(want.hidden[i])));
      ref.destroy();
      gpu.destroy();
    });
  }
});
