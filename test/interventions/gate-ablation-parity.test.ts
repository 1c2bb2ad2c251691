/**
 * The narrow-gate study's ablations (knockout --layers / --from-last, arXiv 2412.06646)
 * against the reference test/reference/interventions_ref.py: HF transformers' own LLaVA and
 * Chameleon in f32, the text ← group edges blocked before the softmax in layers i … L−1 by
 * a registered attention function, in the prefill and — the text queries include every
 * generated token — at every KV-cached step of model.generate.
 *
 * Per flow of `--flow gate` (LLaVA has no end-of-image token: its three others) and per
 * layer range (i … L−1 for i = L−1 … 0, the last being all layers): the answer's
 * probability at the last prompt position (≤ TOL = 1e-4 relative, as the other intervention
 * parity tests: f32 on both sides, the softmax over the whole vocabulary), its argmax, and
 * the greedy tokens generated under the knockout (equal; ours stop at EOS, the reference's
 * do not, so ours are a prefix).
 *
 * So that a knockout that did nothing could not pass, the LM's attention is sharpened
 * (writeSharpened; Chameleon: q_norm × 6) and the reference must move: the all-layer
 * knockout of every flow but the random one moves p by ≥ 10 × TOL or changes the generated
 * answer (a random tiny LM's p is ≈ 1/vocab and moves little: a single position's knockout
 * moves it by as little as 1.8 TOL, but then its tokens differ), and the decoding steps' mask
 * must matter — the reference's tokens with the generated tokens as queries differ from
 * those with the prompt's text queries alone for at least one flow of each model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromLastRanges, GATE_FLOWS, knockoutLayers } from '../../src/interventions/knockout.ts';
import { resolveFlows } from '../../src/pipeline/knockout.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { knockoutRequest, runReferenceBatch } from '../reference/interventions-ref.ts';
import { writeSharpened } from '../reference/host-math.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000011813.jpg');
const TOL = 1e-4;
const NEW = 6;
const work = mkdtempSync(join(tmpdir(), 'phaselens-gate-ablation-parity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

const CASES = [
  { arch: 'llava' as const, prompt: { prompt: 'What animal is on the couch?', chat: true }, flows: GATE_FLOWS.filter((f) => f !== 'text<-end-of-image') },
  { arch: 'chameleon' as const, prompt: { prompt: '<image>What animal is on the couch?' }, flows: GATE_FLOWS },
];

for (const c of CASES) {
  describe(`${c.arch}: knockout in layers i … L−1 with generation vs the HF transformers reference`, () => {
    it('p, argmax and the greedy tokens under each gate flow, for every range', async () => {
      const gpu = await getGpu();
      const dir = join(work, c.arch);
      await makeTiny({ arch: c.arch, out: `${dir}-plain`, seed: 17 });
      await writeSharpened(`${dir}-plain`, dir);
      const m = await loadDir(gpu, dir);
      const x = prepareFile(m, c.prompt, IMAGE);
      const L = m.lm.num_hidden_layers;
      const ranges = fromLastRanges(L);
      const flows = resolveFlows(c.flows, x, { key: 'item', seed: 3 });
      for (const f of flows) expect(f.generated).toBe(true);
      const ours = await knockoutLayers(gpu, m, x, flows, { ranges, generate: NEW });
      const layers = ([lo, hi]: [number, number]) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
      const common = { model: dir, pixelValues: x.pixels!.data, pixelShape: [...x.pixels!.shape] as [number, number, number], inputIds: x.ids, maxNewTokens: NEW };
      const refs = await runReferenceBatch([
        ...flows.map((f) => knockoutRequest({ ...common, entries: ranges.map((r) => ({ dst: f.dst, src: f.src, layers: layers(r), generated: true })) })),
        // the same in all layers with only the prompt's text as queries: shows the decoding steps' mask matters
        knockoutRequest({ ...common, entries: flows.map((f) => ({ dst: f.dst, src: f.src, layers: layers([0, L - 1]), generated: false })) }),
      ]);
      const promptOnly = refs[flows.length];
      expect(ours.base_tokens).toEqual(promptOnly.tokens_base!.slice(0, ours.base_tokens!.length));
      let decodeMaskMatters = false;
      for (const [fi, f] of flows.entries()) {
        const o = ours.flows[f.name];
        const ref = refs[fi];
        expect(ours.answer.id).toBe(ref.answer_id);
        expect(rel(ours.answer.p_base, ref.p_base)).toBeLessThanOrEqual(TOL);
        expect(o.window).toEqual(ranges);
        o.p.forEach((p, i) => expect(rel(p, ref.p[i]), `${f.name} layers ${ranges[i]}`).toBeLessThanOrEqual(TOL));
        expect(o.top).toEqual(ref.argmax);
        o.tokens!.forEach((t, i) => expect(t, `${f.name} layers ${ranges[i]}: tokens`).toEqual(ref.tokens![i].slice(0, t.length)));
        const all = ranges.length - 1;
        const moved = rel(ref.p[all], ref.p_base) >= 10 * TOL || JSON.stringify(ref.tokens![all]) !== JSON.stringify(ref.tokens_base);
        if (!f.name.includes('random')) expect(moved, `${f.name}: the all-layer knockout moves p by ≥ 10 × TOL or changes the answer`).toBe(true);
        if (JSON.stringify(ref.tokens![all]) !== JSON.stringify(promptOnly.tokens![fi])) decodeMaskMatters = true;
        console.log(`${c.arch} ${f.name}: p ours ${o.p.map((v) => v.toExponential(4))} ref ${ref.p.map((v) => v.toExponential(4))}; tokens (all layers) ${o.tokens![all]} / prompt-only queries ${promptOnly.tokens![fi]} / base ${ref.tokens_base}`);
      }
      expect(decodeMaskMatters, 'some flow generates differently when the new tokens are queries too').toBe(true);
    });
  });
}
