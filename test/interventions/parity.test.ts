/**
 * Intervention parity: our knockout sweep, ablation (with generation) and patching /
 * steering against the reference test/reference/interventions_ref.py (HF transformers' own
 * models in f32, the interventions written from the papers' definitions into a registered
 * attention function and layer pre-hooks) on tiny checkpoints of both families.
 *
 * Tolerances (f32 on both sides, same weights): probabilities and their relative changes
 * ≤ 1e-4 relative (the forward itself agrees with HF's to a few 1e-6, test/hf/parity.test.ts; the softmax over
 * 32064 logits and a difference of two close probabilities lose a little more);
 * logit differences ≤ 1e-4 × the largest |logit|. Interventions that block nothing
 * reproduce the base run bit for bit.
 *
 * The checkpoints' LM q_proj / k_proj are × QK_SHARPEN (as in the reference's self-checks,
 * interventions_ref.test.ts): make-tiny's weights alone give near-uniform attention, where
 * blocking or zeroing a few keys barely moves the output and an intervention that did
 * nothing would pass. Every intervention compared here is asserted to move its quantity in
 * the reference by far more than the tolerance, so a no-op cannot pass: each knockout flow
 * by ≥ 100 × TOL (measured ≥ 2.9 %, TOL = 0.01 %); each ablation and each patch / steering
 * sweep by ≥ 10 × its tolerance (measured: ≥ 15× — InstructBLIP's image queries ablated in
 * the last layer only, and its copy patch, barely reach the answer of a random tiny model).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablationHooks } from '../../src/interventions/ablate.ts';
import { runLast } from '../../src/interventions/answer.ts';
import { resolveGroup } from '../../src/interventions/groups.ts';
import { knockoutSweep } from '../../src/interventions/knockout.ts';
import { patchSweep } from '../../src/interventions/patch.ts';
import { generate } from '../../src/models/generate.ts';
import type { Vlm, VlmInput } from '../../src/models/vlm.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { knockoutRequest, patchRequest, runAblateReference, runReferenceBatch } from '../reference/interventions-ref.ts';
import { writeSharpened } from '../reference/host-math.ts';
import { getGpu, randn, relErr } from '../helpers/gpu.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const CATS = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const OTHER = join(import.meta.dirname, '../fixtures/images/000000011813.jpg');
const TOL = 1e-4;
const EFFECT_KNOCKOUT = 100 * TOL;
const EFFECT = 10; // × the tolerance, ablation and patching
const work = mkdtempSync(join(tmpdir(), 'phaselens-interventions-parity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

for (const arch of ['llava', 'instructblip'] as const) {
  describe(`${arch}: interventions vs the HF transformers reference`, () => {
    let dir: string;
    let m: Vlm;
    let x: VlmInput;
    let source: VlmInput;
    const common = () => ({ model: dir, pixelValues: x.pixels!.data, pixelShape: [...x.pixels!.shape] as [number, number, number], inputIds: x.ids, qformerInputIds: x.qformerIds });
    const group = (s: string) => resolveGroup(s, x.groups, x.ids.length);

    beforeAll(async () => {
      dir = join(work, arch);
      await makeTiny({ arch, out: `${dir}-plain`, seed: 31 });
      await writeSharpened(`${dir}-plain`, dir);
      m = await loadDir(await getGpu(), dir);
      const prompt = arch === 'llava' ? { prompt: 'What animal is on the couch?', chat: true } : { prompt: 'What animal is on the couch?' };
      x = prepareFile(m, prompt, OTHER);
      source = prepareFile(m, prompt, CATS);
    });

    it('knockout: p and rel_change_pct per centre layer, for three flows', async () => {
      const gpu = await getGpu();
      const flows = [
        { name: 'last<-image', dst: group('last'), src: group('image') },
        // several DST rows: the sweep re-runs every row from the first of them
        { name: 'question<-image', dst: group('question'), src: group('image') },
        { name: 'last<-question', dst: group('last'), src: group('question').filter((p) => p !== x.groups.last) },
      ];
      const ours = await knockoutSweep(gpu, m, x, flows, { window: 3 });
      const layers = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
      const refs = await runReferenceBatch(
        flows.map((f) => knockoutRequest({ ...common(), entries: ours.flows[f.name].window.map(([lo, hi]) => ({ dst: f.dst, src: f.src, layers: layers(lo, hi) })) })),
      );
      for (const [fi, f] of flows.entries()) {
        const o = ours.flows[f.name];
        const ref = refs[fi];
        expect(ours.answer.id).toBe(ref.answer_id);
        expect(rel(ours.answer.p_base, ref.p_base)).toBeLessThanOrEqual(TOL);
        const refRel = ref.p.map((p) => ((p - ref.p_base) / ref.p_base) * 100);
        console.log(`${arch} ${f.name}: p relErr ${relErr(o.p, ref.p).toExponential(2)}; rel_change_pct ours ${o.rel_change_pct.map((v) => v.toFixed(4))} ref ${refRel.map((v) => v.toFixed(4))}`);
        expect(relErr(o.p, ref.p)).toBeLessThanOrEqual(TOL);
        expect(Math.max(...ref.p.map((p) => rel(p, ref.p_base))), `${f.name}: the knockout's effect`).toBeGreaterThanOrEqual(EFFECT_KNOCKOUT);
        o.rel_change_pct.forEach((v, i) => expect(Math.abs(v - refRel[i])).toBeLessThanOrEqual(TOL * 100 * (1 + Math.abs(refRel[i]) / 100)));
      }
    });

    it('ablation: p_answer in all and in single layers, and the greedy tokens with the ablation active', async () => {
      const gpu = await getGpu();
      const L = m.lm.num_hidden_layers;
      const keys = arch === 'llava' ? [x.groups.image[1] - 1] : group('image');
      const configs = [Array.from({ length: L }, (_, l) => l), [0], [L - 1]];
      const ref = await runAblateReference({ ...common(), entries: configs.map((layers) => ({ keys, layers, heads: null })), maxNewTokens: 4 });
      const base = await runLast(gpu, m.languageModel, () => m.forward(gpu, x));
      expect(base.top).toBe(ref.answer_id);
      for (const [i, layers] of configs.entries()) {
        const { hooks, release } = ablationHooks(gpu, m.lm, x.ids.length, { keys, layers });
        const after = await m.hooks.withHooks(hooks, () => runLast(gpu, m.languageModel, () => m.forward(gpu, x)));
        const tokens = await m.hooks.withHooks(hooks, async () => (await generate(gpu, m, x, 4)).tokens);
        release();
        expect(rel(after.p(base.top), ref.p_answer[i]), `layers ${layers}`).toBeLessThanOrEqual(TOL);
        expect(rel(ref.p_answer[i], ref.p_base), `layers ${layers}: the ablation's effect`).toBeGreaterThanOrEqual(EFFECT * TOL);
        expect(after.top).toBe(ref.argmax_after[i]);
        expect(tokens).toEqual(ref.tokens![i].slice(0, tokens.length));
      }
    });

    it('an ablation of no layer and a patch from the same image reproduce the base run bit for bit', async () => {
      const gpu = await getGpu();
      const base = await runLast(gpu, m.languageModel, () => m.forward(gpu, x));
      const { hooks, release } = ablationHooks(gpu, m.lm, x.ids.length, { keys: group('image'), layers: [] });
      const none = await m.hooks.withHooks(hooks, () => runLast(gpu, m.languageModel, () => m.forward(gpu, x)));
      release();
      expect(Array.from(none.logits)).toEqual(Array.from(base.logits));
      const same = await patchSweep(gpu, m, x, { group: group('image'), edit: { mode: 'copy', source: x }, layers: [0, 1], fromLayerOn: false, answers: [1, 2] });
      expect(same.per_layer.map((p) => p.logit_diff)).toEqual([same.base_target.logit_diff, same.base_target.logit_diff]);
    });

    it('patching (at l, from l on) and steering: logit differences per layer', async () => {
      const gpu = await getGpu();
      const L = m.lm.num_hidden_layers;
      const layers = Array.from({ length: L }, (_, l) => l);
      // the base run's two likeliest tokens: their logit difference moves most under an edit
      const base = await runLast(gpu, m.languageModel, () => m.forward(gpu, x));
      const order = Array.from(base.logits.keys()).sort((a, b) => base.logits[b] - base.logits[a]);
      const answers: [number, number] = [order[0], order[1]];
      const vector = randn(m.lm.hidden_size, 77, 0.5);
      const cases = [
        { name: 'copy at l', edit: { mode: 'copy' as const, source }, fromLayerOn: false },
        { name: 'copy from l on', edit: { mode: 'copy' as const, source }, fromLayerOn: true },
        { name: 'add 2·v', edit: { mode: 'add' as const, vector, scale: 2 }, fromLayerOn: false },
      ];
      const refs = await runReferenceBatch(
        cases.map((c) =>
          patchRequest({
            ...common(),
            withLogits: true,
            patch: { group: group('image'), layers, mode: c.edit.mode, fromLayerOn: c.fromLayerOn, answers, ...(c.edit.mode === 'copy' ? { sourcePixelValues: source.pixels!.data } : { vector, scale: 2 }) },
          }),
        ),
      );
      for (const [ci, c] of cases.entries()) {
        const ours = await patchSweep(gpu, m, x, { group: group('image'), edit: c.edit, layers, fromLayerOn: c.fromLayerOn, answers });
        const ref = refs[ci];
        const bound = TOL * Math.max(...ref.results.flatMap((r) => r.last_logits!.map(Math.abs)));
        expect(Math.max(...ref.results.map((r) => Math.abs(r.logit_diff - ref.base_target))), `${c.name}: the edit's effect`).toBeGreaterThanOrEqual(EFFECT * bound);
        expect(Math.abs(ours.base_target.logit_diff - ref.base_target)).toBeLessThanOrEqual(bound);
        ours.per_layer.forEach((p, i) => {
          expect(Math.abs(p.logit_diff - ref.results[i].logit_diff), `${c.name} layer ${p.layer}`).toBeLessThanOrEqual(bound);
          expect(p.top_answer).toBe(ref.results[i].top_id);
        });
        console.log(`${arch} ${c.name}: logit_diff ours ${ours.per_layer.map((p) => p.logit_diff.toFixed(5))} ref ${ref.results.map((r) => r.logit_diff.toFixed(5))}`);
      }
    });
  });
}
