/**
 * The gate measures find a gate where there is one, and none where there is none
 * (issue 21, item 4), through the real CLI:
 * - the constructed gate (weights-tools/constructed-gate.ts: text queries attend only to
 *   <eoss>, set by hand): the attention share on end-of-image ≥ 0.9 at every layer and
 *   image; and the attention knockout agrees that the image reaches the answer only
 *   through it — blocking last ← every image token leaves the answer's probability as it
 *   was (|change| ≤ 1e-3 %: the image tokens carry ≤ 1e-5 of the last query's weight),
 *   blocking last ← <eoss> changes it;
 * - the same tiny Chameleon with its random weights, and a tiny LLaVA (no end-of-image
 *   token: its last patch is the candidate): no position gets 0.9.
 * (The HF comparison of the same measures is test/hf/gate-hf.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { makeConstructedGate } from '../../weights-tools/constructed-gate.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const FIX = join(import.meta.dirname, '../fixtures/images');
const work = mkdtempSync(join(tmpdir(), 'phaselens-constructed-gate-'));
const data = `folder:${join(work, 'images')}`;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.status, r.stderr).toBe(0);
}

function results(out: string): any[] {
  return readdirSync(join(out, 'images')).map((f) => JSON.parse(readFileSync(join(out, 'images', f), 'utf8')));
}

beforeAll(async () => {
  mkdirSync(join(work, 'images'));
  for (const f of ['000000039769.png', '000000011813.jpg']) copyFileSync(join(FIX, f), join(work, 'images', f));
  await makeConstructedGate(join(work, 'gate'), 6);
  await makeTiny({ arch: 'chameleon', out: join(work, 'chameleon'), seed: 6 });
  await makeTiny({ arch: 'llava', out: join(work, 'llava'), seed: 6 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the constructed gate', () => {
  it('puts >= 0.9 of the text queries\' image-side attention on <eoss> at every layer', () => {
    cli('gate', '--model', join(work, 'gate'), '--data', data, '--out', join(work, 'out-gate'));
    const rs = results(join(work, 'out-gate'));
    expect(rs).toHaveLength(2);
    for (const r of rs) {
      for (const s of r.attention.groups['end-of-image'].share) expect(s).toBeGreaterThanOrEqual(0.9);
      for (const s of r.attention.groups['end-of-image'].of_all) expect(s).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('knockout agrees: the answer does not see the image tokens, only <eoss>', () => {
    const out = join(work, 'ko-gate');
    const eoss = results(join(work, 'out-gate'))[0].tokens.image_side['end-of-image'][0];
    cli('knockout', '--model', join(work, 'gate'), '--data', data, '--flow', 'last<-image', '--flow', `last<-@${eoss}`, '--window', '3', '--out', out);
    for (const r of results(out)) {
      for (const c of r.flows['last<-image'].rel_change_pct) expect(Math.abs(c)).toBeLessThanOrEqual(1e-3);
      expect(Math.max(...r.flows[`last<-@${eoss}`].rel_change_pct.map(Math.abs))).toBeGreaterThan(1e-2);
    }
  });
});

describe('no gate in ordinary tiny models', () => {
  it('random Chameleon: <eoss> gets < 0.9; LLaVA (no end-of-image token): the last patch gets < 0.9', () => {
    cli('gate', '--model', join(work, 'chameleon'), '--data', data, '--out', join(work, 'out-chameleon'));
    cli('gate', '--model', join(work, 'llava'), '--data', data, '--out', join(work, 'out-llava'));
    for (const r of results(join(work, 'out-chameleon'))) for (const s of r.attention.groups['end-of-image'].share) expect(s).toBeLessThan(0.9);
    for (const r of results(join(work, 'out-llava'))) {
      expect(r.attention.groups['end-of-image']).toBeUndefined();
      for (const s of r.attention.groups['last-image'].share) expect(s).toBeLessThan(0.9);
    }
  });
});
