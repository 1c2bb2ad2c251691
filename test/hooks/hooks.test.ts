/**
 * The hook registry (src/hooks/hooks.ts): one per loaded model with every tower's names,
 * undeclared names refused with the nearest ones, the ownership rule for replaced
 * tensors (nothing leaks, the replacement takes effect), and `dump` passing each vision
 * hook once (the tower runs once).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { HookPoints } from '../../src/hooks/hooks.ts';
import { scale } from '../../src/ops/elementwise.ts';
import type { Vlm, VlmInput } from '../../src/models/vlm.ts';
import { dumpActivations } from '../../src/probes/dump.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const work = mkdtempSync(join(tmpdir(), 'phaselens-hooks-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('HookPoints', () => {
  const h = new HookPoints();
  for (let l = 0; l < 3; l++) for (const s of ['resid_pre', 'resid_post']) h.declare(`lm.blocks.${l}.${s}`, '[pos, d_model]');

  it('refuses an undeclared name and lists the nearest declared ones', () => {
    expect(() => h.add('lm.blocks.1.resid_psot', () => {})).toThrow(UserError);
    expect(() => h.add(['lm.blocks.0.resid_pre', 'lm.block.2.resid_post'], () => {})).toThrow(/no hook point "lm\.block\.2\.resid_post".*nearest: lm\.blocks\.2\.resid_post/);
    expect(h.nearest('lm.blocks.1.resid_psot')[0]).toBe('lm.blocks.1.resid_post');
  });

  it('refuses a filter that matches nothing declared, and leaves no subscription behind', async () => {
    await expect(h.withHooks([['lm.blocks.0.resid_pre', () => {}], [(n) => n.startsWith('vision.'), () => {}]], async () => 0)).rejects.toThrow(/matches no declared hook point/);
    expect(h.listened('lm.blocks.0.resid_pre')).toBe(false);
  });
});

for (const arch of ['llava', 'instructblip'] as const) {
  describe(`one registry per ${arch} model`, () => {
    let m: Vlm;
    let x: VlmInput;
    beforeAll(async () => {
      const dir = join(work, arch);
      await makeTiny({ arch, out: dir, seed: 21 });
      m = await loadDir(await getGpu(), dir);
      x = prepareFile(m, arch === 'llava' ? { prompt: 'What is this?', chat: true } : { prompt: 'What is this?' }, IMAGE);
    });

    it('declares every tower in the model\'s one registry', () => {
      const towers = new Set([...m.hooks.declared.keys()].map((n) => n.split('.')[0]));
      expect([...towers].sort()).toEqual(arch === 'llava' ? ['lm', 'projector', 'vision'] : ['lm', 'projector', 'qformer', 'vision']);
    });

    it('a replaced tensor is released once by its new owner: no leak, and the replacement takes effect', async () => {
      const gpu = await getGpu();
      const last = async (): Promise<Float32Array> => {
        const h = m.forward(gpu, x);
        const out = await gpu.readF32(h);
        gpu.release(h);
        return out;
      };
      await last(); // first forward builds the model's RoPE table, kept for later runs
      const before = gpu.allocated;
      const plain = await last();
      expect(gpu.allocated).toBe(before);
      const replaced = await m.hooks.withHooks([['lm.blocks.1.resid_pre', (t) => {
        const r = scale(gpu, t, 0.5);
        gpu.release(t); // the subscriber owns what it replaced
        return r;
      }]], last);
      await gpu.sync();
      expect(gpu.allocated).toBe(before);
      const diff = replaced.reduce((d, v, i) => Math.max(d, Math.abs(v - plain[i])), 0);
      expect(diff).toBeGreaterThan(1e-3);
    });

    it('dump passes every vision hook once (the tower runs once)', async () => {
      const gpu = await getGpu();
      const seen = new Map<string, number>();
      const undo = m.hooks.add((n) => n.startsWith('vision.'), (_, n) => void seen.set(n, (seen.get(n) ?? 0) + 1));
      try {
        const d = await dumpActivations(gpu, m, x);
        const Lv = (m.config.vision_config as { num_hidden_layers: number }).num_hidden_layers;
        expect(d.has(`vision_hidden_states.${Lv}`)).toBe(true);
      } finally {
        undo();
      }
      expect(seen.size).toBeGreaterThan(0);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
    });
  });
}
