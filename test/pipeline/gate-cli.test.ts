/**
 * `phaselens gate` through the real CLI on tiny checkpoints of LLaVA, LLaVA-NeXT,
 * InstructBLIP and Chameleon with the same command line: the per-item JSON and the aggregate (README,
 * "gate"), the groups each family has, resume, and bad input refused with a one-line
 * message before any weight loads.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { cli, refused } from '../helpers/cli.ts';

const FIX = join(import.meta.dirname, '../fixtures/images');
const work = mkdtempSync(join(tmpdir(), 'phaselens-gate-cli-'));
const images = join(work, 'images');
const data = `folder:${images}`;



const GROUPS: Record<string, string[]> = {
  llava: ['internal-image', 'last-image'],
  llava_next: ['internal-image', 'last-image', 'newline'],
  instructblip: ['internal-image', 'last-image'],
  chameleon: ['start-of-image', 'internal-image', 'last-image', 'end-of-image'],
};

beforeAll(async () => {
  mkdirSync(images);
  for (const f of ['000000039769.png', '000000011813.jpg']) copyFileSync(join(FIX, f), join(images, f));
  for (const arch of Object.keys(GROUPS)) await makeTiny({ arch, out: join(work, arch), seed: 4 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));


for (const arch of Object.keys(GROUPS)) {
  describe(`gate on ${arch}`, () => {
    it('writes per-item separation and attention share for every layer, the aggregate, and resumes', () => {
      const out = join(work, `gate-${arch}`);
      const r = cli('gate', '--model', join(work, arch), '--data', data, '--out', out, '--bins', '512');
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.code).toBe(0);
      const files = readdirSync(join(out, 'images'));
      expect(files).toHaveLength(2);
      const L = JSON.parse(readFileSync(join(work, arch, 'config.json'), 'utf8')).text_config?.num_hidden_layers ?? 3;
      for (const f of files) {
        const j = JSON.parse(readFileSync(join(out, 'images', f), 'utf8'));
        expect(j.model_family).toBe(arch);
        expect(j.separation.bins).toBe(512);
        expect(j.separation.resolution).toBe(1 / 512);
        for (const k of ['q1', 'median', 'q3', 'pairs']) expect(j.separation[k]).toHaveLength(L + 1);
        j.separation.median.forEach((m: number, l: number) => {
          expect(j.separation.q1[l]).toBeLessThanOrEqual(m);
          expect(m).toBeLessThanOrEqual(j.separation.q3[l]);
          expect(j.separation.pairs[l]).toBe(j.tokens.image * j.tokens.text);
        });
        expect(Object.keys(j.attention.groups)).toEqual(GROUPS[arch]);
        expect(Object.keys(j.tokens.image_side)).toEqual(GROUPS[arch]);
        for (let l = 0; l < L; l++) {
          const shares = GROUPS[arch].map((g) => j.attention.groups[g].share[l]);
          expect(Math.abs(shares.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-6);
          const ofAll = GROUPS[arch].reduce((a, g) => a + j.attention.groups[g].of_all[l], 0);
          expect(Math.abs(ofAll - j.attention.image_side_of_all[l])).toBeLessThan(1e-6);
          const internal = j.attention.groups['internal-image'];
          expect(internal.per_token[l]).toBeCloseTo(internal.share[l] / internal.positions.length, 12);
        }
        expect(j.tokens.queries.every((q: number) => q > Math.max(...Object.values(j.tokens.image_side).flat() as number[]))).toBe(true);
      }
      const agg = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8'));
      expect(agg.n_items).toBe(2);
      expect(agg.separation.median).toHaveLength(L + 1);
      expect(agg.separation.median[0].n).toBe(2);
      expect(Object.keys(agg.attention.groups)).toEqual(GROUPS[arch]);
      expect(readFileSync(join(out, 'aggregate.csv'), 'utf8').split('\n')[0]).toBe('measure,group,layer,mean,std,n');
      const again = cli('gate', '--model', join(work, arch), '--data', data, '--out', out, '--bins', '512');
      expect(again.code).toBe(0);
      expect(again.out).toMatch(/^0 items, 2 already done, 0 failed/);
    });
  });
}

describe('gate in shards', () => {
  it('two shards merged give the unsharded run\'s aggregate', () => {
    const parts = ['1/2', '2/2'].map((sh, i) => {
      const out = join(work, `shard-${i}`);
      expect(cli('gate', '--model', join(work, 'chameleon'), '--data', data, '--out', out, '--bins', '512', '--shard', sh).code).toBe(0);
      return out;
    });
    const merged = join(work, 'merged');
    const r = cli('merge', ...parts, '--out', merged);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    // everything but how the run went (its data set is "merged from …")
    const read = (d: string) => ({ ...JSON.parse(readFileSync(join(d, 'aggregate.json'), 'utf8')), run: undefined });
    expect(read(merged)).toEqual(read(join(work, 'gate-chameleon')));
  });
});

describe('gate refusals, before any weight loads', () => {
  it('a position the family lacks names the ones it has; an unknown one lists the known', () => {
    refused(cli('gate', '--model', join(work, 'llava'), '--data', data, '--out', join(work, 'r1'), '--positions', 'end-of-image'), /gate position "end-of-image": .* \(llava\) has no such position in its sequence; it has internal-image, last-image/);
    refused(cli('gate', '--model', join(work, 'instructblip'), '--data', data, '--out', join(work, 'r2'), '--positions', 'start-of-image'), /it has internal-image, last-image/);
    refused(cli('gate', '--model', join(work, 'chameleon'), '--data', data, '--out', join(work, 'r3'), '--positions', 'eoi'), /unknown gate position "eoi" \(known: start-of-image, internal-image, last-image, newline, end-of-image\)/);
  });

  it('--positions picks the groups reported; the shares stay normalised over the whole image side', () => {
    const out = join(work, 'picked');
    const r = cli('gate', '--model', join(work, 'chameleon'), '--data', data, '--out', out, '--positions', 'end-of-image,last-image', '--limit', '1');
    expect(r.code).toBe(0);
    const j = JSON.parse(readFileSync(join(out, 'images', readdirSync(join(out, 'images'))[0]), 'utf8'));
    const full = JSON.parse(readFileSync(join(work, 'gate-chameleon', 'images', `${j.id}.json`), 'utf8'));
    expect(Object.keys(j.attention.groups)).toEqual(['last-image', 'end-of-image']);
    expect(j.attention.groups['end-of-image'].share).toEqual(full.attention.groups['end-of-image'].share);
  });

  it('a prompt with no text after the image, too many bins, --drop-bos without BOS', () => {
    refused(cli('gate', '--model', join(work, 'llava'), '--data', data, '--out', join(work, 'r4'), '--prompt', 'Look: <image>'), /need text after the image .* this prompt ends with the image/);
    refused(cli('gate', '--model', join(work, 'llava'), '--data', data, '--out', join(work, 'r5'), '--bins', '4096'), /--bins 4096: at most 2048/);
    refused(cli('gate', '--model', join(work, 'llava'), '--data', data, '--out', join(work, 'r6'), '--input-ids', '3,32000,4', '--drop-bos'), /--drop-bos: this prompt has no BOS token/);
    expect(existsSync(join(work, 'r4'))).toBe(false);
  });
});
