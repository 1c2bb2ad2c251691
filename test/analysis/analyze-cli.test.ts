/**
 * `phaselens analyze` end to end through the real CLI, with one command line for both
 * families: a folder of real images (JPEG and PNG, with captions) → per-image JSON,
 * aggregate and a report that names the family and where its visual tokens sit.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const FIX = join(import.meta.dirname, '../fixtures/images');
const work = mkdtempSync(join(tmpdir(), 'phaselens-analyze-cli-'));
const data = join(work, 'images');

beforeAll(() => {
  mkdirSync(data);
  for (const f of ['000000039769.png', '000000011813.jpg']) copyFileSync(join(FIX, f), join(data, f));
  writeFileSync(join(data, 'captions.json'), JSON.stringify({ '000000039769.png': ['two cats sleeping on a pink couch'] }));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CASES = [
  { arch: 'llava' as const, family: 'llava' },
  { arch: 'instructblip' as const, family: 'instructblip' },
];

describe('analyze: the same command line for both families', () => {
  for (const c of CASES) {
    it(`${c.arch}: per-image metrics, aggregate and a report naming the family`, async () => {
      const model = join(work, c.arch);
      await makeTiny({ arch: c.arch, out: model, seed: 4 });
      const out = join(work, `out-${c.arch}`);
      const r = spawnSync(process.execPath, [CLI, 'analyze', '--model', model, '--data', `folder:${data}`, '--out', out], { encoding: 'utf8', timeout: 300_000 });
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/2 analysed, 0 already done, 0 failed/);
      const files = readdirSync(join(out, 'images')).sort();
      expect(files).toHaveLength(2);
      const m = JSON.parse(readFileSync(join(out, 'images', files[0]), 'utf8'));
      expect(m.model_family).toBe(c.family);
      const [s, e] = m.tokens.image;
      expect(e - s).toBe(c.arch === 'llava' ? 9 : 8);
      if (c.arch === 'instructblip') expect([s, e, m.tokens.bos]).toEqual([0, 8, 8]);
      else expect(m.tokens.bos).toBe(0);
      expect(m.contextualization.inter).toHaveLength(4);
      const agg = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8'));
      expect(agg.model_family).toBe(c.family);
      const html = readFileSync(join(out, 'report.html'), 'utf8');
      expect(html).toContain(`model family</th><td>${c.family}`);
      expect(html).toContain(c.arch === 'llava' ? 'image features' : 'Q-Former query outputs');
      expect(readFileSync(join(out, 'figures', 'fig1_inter.svg'), 'utf8')).toContain(c.arch === 'llava' ? 'LLaVA-1.5' : 'InstructBLIP');
    });
  }
});
