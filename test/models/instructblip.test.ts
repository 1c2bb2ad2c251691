/**
 * InstructBLIP parity: our WGSL forward (`dumpActivations`, i.e. `phaselens dump`) against
 * the independent PyTorch reference (test/reference/instructblip_ref.py, f32, written from
 * HF modeling_instructblip.py) on tiny HF-format checkpoints, every tensor of the dump
 * contract, plus greedy generation with the KV cache.
 *
 * Tolerance: max |ours − ref| ≤ 1e-4 × max |ref| per tensor, as for LLaVA (same weights on
 * both sides, f16 upcast exactly; only f32 summation order and the kernels' erf/exp
 * approximations, ≤ 1.2e-7 relative, differ, compounded over the EVA, Q-Former and
 * LLaMA layers).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/models/generate.ts';
import type { Vlm, VlmInput } from '../../src/models/vlm.ts';
import { dumpActivations, type HostTensor } from '../../src/probes/dump.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { runInstructBlipReference, type RefTensor } from '../reference/pyref.ts';
import { getGpu, relErr } from '../helpers/gpu.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const TOL = 1e-4;
const NEW_TOKENS = 6;

const cases = [
  { name: 'f32 weights, one file', dtype: 'f32' as const, shards: 1, gqa: false, seed: 11 },
  { name: 'f16 weights, 2 shards, grouped-query attention', dtype: 'f16' as const, shards: 2, gqa: true, seed: 12 },
];

const work = mkdtempSync(join(tmpdir(), 'phaselens-ib-parity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

for (const c of cases) {
  describe(`InstructBLIP parity vs PyTorch: ${c.name}`, () => {
    let m: Vlm;
    let x: VlmInput;
    let ours: Map<string, HostTensor>;
    let ref: Map<string, RefTensor>;

    beforeAll(async () => {
      const dir = join(work, `tiny-${c.seed}`);
      await makeTiny({ arch: 'instructblip', out: dir, seed: c.seed, dtype: c.dtype, shards: c.shards, gqa: c.gqa });
      const gpu = await getGpu();
      m = await loadDir(gpu, dir);
      x = prepareFile(m, { prompt: 'What is unusual about this image?' }, IMAGE);
      ours = await dumpActivations(gpu, m, x);
      const px = x.pixels!;
      ref = await runInstructBlipReference({
        model: dir,
        pixelValues: px.data,
        pixelShape: [...px.shape] as [number, number, number],
        inputIds: x.ids,
        qformerInputIds: x.qformerIds!,
        maxNewTokens: NEW_TOKENS,
      });
    });

    it('places [queries, BOS </s>, prompt] and tokenises the instruction for the Q-Former', () => {
      const Q = (m.config as { num_query_tokens: number }).num_query_tokens;
      expect(x.groups.image).toEqual([0, Q]);
      expect(x.ids.slice(0, Q)).toEqual(Array(Q).fill(32000));
      expect(x.ids[Q]).toBe(2); // the checkpoint's tokenizer names </s> as BOS
      expect(x.groups.bos).toBe(Q);
      expect(x.groups.text[0]).toBe(Q);
      // bert-base-uncased: [CLS] what is unusual about this image ? [SEP]
      expect(x.qformerIds).toEqual([101, 2054, 2003, 5866, 2055, 2023, 3746, 1029, 102]);
    });

    it('produces every tensor of the dump contract with the reference shapes', () => {
      const cfg = m.config as { vision_config: { num_hidden_layers: number }; qformer_config: { num_hidden_layers: number } };
      const names = ['input_ids', 'qformer_input_ids', 'pixel_values', 'vision_last_hidden_state', 'query_output', 'image_features', 'residual_final', 'logits'];
      for (let k = 0; k <= cfg.vision_config.num_hidden_layers; k++) names.push(`vision_hidden_states.${k}`);
      for (let k = 0; k <= cfg.qformer_config.num_hidden_layers; k++) names.push(`qformer_hidden_states.${k}`);
      for (let l = 0; l <= m.lm.num_hidden_layers; l++) names.push(`hidden_states.${l}`);
      expect([...ours.keys()].sort()).toEqual(names.sort());
      for (const n of names) expect(ours.get(n)!.shape, n).toEqual(ref.get(n)!.shape);
      expect(Array.from(ours.get('input_ids')!.data)).toEqual(Array.from(ref.get('input_ids')!.data));
      expect(Array.from(ours.get('qformer_input_ids')!.data)).toEqual(Array.from(ref.get('qformer_input_ids')!.data));
    });

    it(`matches every activation within ${TOL} of its scale`, () => {
      const rows: string[] = [];
      let worst = 0;
      for (const [name, t] of ours) {
        if (name.endsWith('input_ids')) continue;
        const e = relErr(t.data, ref.get(name)!.data);
        worst = Math.max(worst, e);
        rows.push(`${name.padEnd(26)} relErr ${e.toExponential(2)}`);
        expect(e, name).toBeLessThanOrEqual(TOL);
      }
      console.log(`InstructBLIP ${c.name}: worst relErr ${worst.toExponential(2)}\n  ${rows.join('\n  ')}`);
    });

    it('greedy generation with the KV cache gives the reference tokens', async () => {
      const g = await generate(await getGpu(), m, x, NEW_TOKENS);
      const want = Array.from(ref.get('greedy_tokens')!.data);
      expect(g.tokens).toEqual(want.slice(0, g.tokens.length));
      expect(g.tokens.length).toBe(want.length);
    });
  });
}
