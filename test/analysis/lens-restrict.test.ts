/**
 * A restricted LogitLens (`lensLayers` / `lensPositions`) on tiny checkpoints of both
 * families, against the full lens on the same image and checkpoint: every covered entry
 * equals the full run's entry for that layer and visual token: as many candidates, their
 * probabilities within PROB_TOL = 1e-5 of the row's top one (lm_head may run another matmul
 * variant for the smaller M: f32 summation order), and the same ids except a swap of two
 * candidates whose full-run probabilities are within 2 × PROB_TOL × the top one (each can
 * move by PROB_TOL, so only such a pair can change order; an id from outside the full
 * top-k can only come in at the last rank); uncovered layers and positions
 * are absent, not zeros; recall over the restriction equals recall computed from the full
 * run's ids restricted the same way; and `none` runs no lens at all. Every other metric is
 * the same as in the full run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeImage, type AnalyzeOptions } from '../../src/analysis/analyze-image.ts';
import { logitLensRecall, pieceWords } from '../../src/analysis/recall.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import type { Vlm } from '../../src/models/vlm.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const K = 4;
const PROB_TOL = 1e-5;
const work = mkdtempSync(join(tmpdir(), 'phaselens-lens-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Lens {
  k: number;
  layers: number[];
  positions: number[];
  top_ids: number[][][];
  top_probs: number[][][];
}
type Result = Record<string, unknown> & { logit_lens: Lens; recall?: (number | null)[]; options: Record<string, unknown>; tokens: { image: [number, number] } };

const CASES = [
  { arch: 'llava' as const, prompt: { prompt: 'Describe the image.', chat: true }, layers: '0,3', positions: '1:9:3', want: { layers: [0, 3], positions: [1, 4, 7], canon: ['0,3', '1:8:3'] } },
  { arch: 'instructblip' as const, prompt: { prompt: 'Describe the image.' }, layers: '2-3', positions: '0,5-6', want: { layers: [2, 3], positions: [0, 5, 6], canon: ['2-3', '0,5-6'] } },
];

for (const c of CASES) {
  describe(`${c.arch}: restricted LogitLens`, () => {
    let gpu: Gpu;
    let m: Vlm;
    let full: Result;
    let part: Result;
    let captions: string[];
    const piece = (id: number) => (id < m.tokenizer!.vocabSize ? m.tokenizer!.idToToken(id) : '');
    const run = async (o: Partial<AnalyzeOptions>, caps: string[]) =>
      (await analyzeImage(gpu, m, { id: 'cats', image: IMAGE, captions: caps }, readImageFile(IMAGE), { prompt: c.prompt, dropBos: false, topk: K, smooth: 1, padToSquare: false, ...o })) as Result;

    beforeAll(async () => {
      const dir = join(work, c.arch);
      await makeTiny({ arch: c.arch, out: dir, seed: 11 });
      gpu = await getGpu();
      m = await loadDir(gpu, dir);
      // captions built from what the full lens decodes, half of it at visual tokens the restriction leaves out, so recall must see the restriction
      const probe = await run({}, ['cats']);
      const words = (l: number, inside: boolean) =>
        probe.logit_lens.positions
          .filter((p) => c.want.positions.includes(p) === inside)
          .flatMap((p) => probe.logit_lens.top_ids[l][p].flatMap((id) => pieceWords(piece(id))));
      const L = probe.logit_lens.layers.length - 1;
      captions = [[...words(c.want.layers[0], true).slice(0, 3), ...words(c.want.layers[0], false).slice(0, 3), ...words(L, false).slice(0, 2)].join(' ')];
      full = await run({}, captions);
      part = await run({ lensLayers: c.layers, lensPositions: c.positions }, captions);
    }, 120_000);

    it('records the coverage in canonical form, in the options and next to the entries', () => {
      expect(full.options.lens_layers).toBe('all');
      expect(full.options.lens_positions).toBe('all');
      const n = full.tokens.image[1] - full.tokens.image[0];
      expect(full.logit_lens.layers).toEqual(Array.from({ length: full.logit_lens.top_ids.length }, (_, l) => l));
      expect(full.logit_lens.positions).toEqual(Array.from({ length: n }, (_, p) => p));
      expect([part.options.lens_layers, part.options.lens_positions]).toEqual(c.want.canon);
      expect(part.logit_lens.layers).toEqual(c.want.layers);
      expect(part.logit_lens.positions).toEqual(c.want.positions);
    });

    it('uncovered layers and positions are absent, not zeros', () => {
      expect(part.logit_lens.top_ids).toHaveLength(c.want.layers.length);
      expect(part.logit_lens.top_probs).toHaveLength(c.want.layers.length);
      for (const layer of [...part.logit_lens.top_ids, ...part.logit_lens.top_probs]) {
        expect(layer).toHaveLength(c.want.positions.length);
        for (const row of layer) expect(row).toHaveLength(K);
      }
      expect(part.recall).toHaveLength(full.recall!.length);
      part.recall!.forEach((v, l) => expect(v === null, `recall[${l}]`).toBe(!c.want.layers.includes(l)));
    });

    it('every covered entry equals the full run’s entry for that layer and visual token', () => {
      let swaps = 0;
      c.want.layers.forEach((l, i) =>
        c.want.positions.forEach((p, j) => {
          const [ids, probs] = [part.logit_lens.top_ids[i][j], part.logit_lens.top_probs[i][j]];
          const [fids, fprobs] = [full.logit_lens.top_ids[l][p], full.logit_lens.top_probs[l][p]];
          for (const a of [ids, probs, fids, fprobs]) expect(a, `l ${l} p ${p}`).toHaveLength(K);
          probs.forEach((v, r) => expect(Math.abs(v - fprobs[r]) / fprobs[0], `l ${l} p ${p} rank ${r}`).toBeLessThanOrEqual(PROB_TOL));
          ids.forEach((id, r) => {
            if (id === fids[r]) return;
            swaps++;
            const j = fids.indexOf(id);
            if (j < 0) expect(r, `l ${l} p ${p}: id ${id} from outside the full top-${K} above the last rank`).toBe(K - 1);
            else expect(Math.abs(fprobs[j] - fprobs[r]) / fprobs[0], `l ${l} p ${p} rank ${r}: a swap that is not a near-tie`).toBeLessThanOrEqual(2 * PROB_TOL);
          });
        }),
      );
      expect(swaps).toBeLessThanOrEqual(2);
    });

    it('recall over the restriction equals recall from the full run restricted the same way (and differs from the full recall)', () => {
      const restrictedIds = c.want.layers.map((l) => c.want.positions.map((p) => full.logit_lens.top_ids[l][p]));
      const want = logitLensRecall(restrictedIds, piece, captions);
      expect(c.want.layers.map((l) => part.recall![l])).toEqual(want);
      // the captions hold words decoded only outside the restriction: the full lens finds more of them
      expect(c.want.layers.some((l) => full.recall![l]! > part.recall![l]!)).toBe(true);
      expect(want.some((v) => v! > 0)).toBe(true);
    });

    it('the other metrics do not change', () => {
      for (const key of ['contextualization', 'norm_attention', 'phases', 'tokens']) expect(part[key], key).toEqual(full[key]);
    });

    it('none runs no lens: empty coverage, no recall', async () => {
      const none = await run({ lensPositions: 'none' }, captions);
      expect(none.logit_lens).toEqual({ k: 4, layers: [], positions: [], top_ids: [], top_probs: [] });
      expect(none.recall).toBeUndefined();
      expect([none.options.lens_layers, none.options.lens_positions]).toEqual(['none', 'none']);
    });
  });
}
