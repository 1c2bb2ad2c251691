/**
 * CI smoke run of the organism recipe, both layouts: skeleton, tokenised tasks, a few
 * dozen training steps on a small batch (15–20 s per layout here), f16 export, and the checkpoint validated by
 * phaselens. Proves the recipe runs end to end and learns (the loss falls); the shipped
 * organisms come from the same steps run longer (weights-tools/train/build.sh).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hfPython } from '../../bench/hf.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { openModel } from '../../src/models/registry.ts';
import { exportOrganism } from '../../weights-tools/train/export.ts';
import { organismConfigJson, writeSkeleton, type OrganismArch } from '../../weights-tools/train/organisms.ts';
import { prepare } from '../../weights-tools/train/prepare.ts';

const TRAIN = join(import.meta.dirname, '../../weights-tools/train/train.py');
const work = mkdtempSync(join(tmpdir(), 'phaselens-train-smoke-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const STEPS = 60;

describe('organism training smoke run', () => {
  for (const arch of ['llava', 'instructblip'] as OrganismArch[]) {
    it(`${arch}: ${STEPS} steps lower the answer loss and export a checkpoint phaselens opens`, { timeout: 240_000 }, async () => {
      const dir = join(work, arch);
      await writeSkeleton(dir, organismConfigJson(arch));
      await prepare({ model: dir, seed: 5, scenes: 64, out: join(work, `${arch}.safetensors`) });
      const r = spawnSync(
        hfPython(),
        [TRAIN, '--model', dir, '--data', join(work, `${arch}.safetensors`), '--vision-steps', '10', '--steps', String(STEPS), '--batch', '12', '--every', '20', '--lr', '3e-3', '--out', join(work, `${arch}-trained.safetensors`), '--log', join(work, `${arch}.json`)],
        { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const log = JSON.parse(readFileSync(join(work, `${arch}.json`), 'utf8'));
      // the first 20 steps average near 3 (from ln(70 answer ids) ≈ 4.2); 60 steps on 64 scenes
      // learn at least the fixed caption words and the answer formats: well over 25 % lower
      expect(log.final_loss).toBeLessThan(0.75 * log.first_loss);
      expect(log.curve.map((c: { step: number }) => c.step)).toEqual([20, 40, 60]);

      const out = await exportOrganism(dir, join(work, `${arch}-trained.safetensors`));
      expect(out.bytes).toBeLessThan(16e6);
      const files = await openModel(nodeDirectory(dir));
      expect(files.config.model_type).toBe(arch);
      await files.close();
    });
  }
});
