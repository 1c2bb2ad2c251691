/**
 * `--lens-layers` / `--lens-positions` through the real CLI: bad specs are refused with
 * exit code 2 and a message before any weight loads; a restricted run says what it covered
 * in the per-image JSON, the aggregate and the report; merge refuses shards made with
 * different lens settings and merges equal ones; and re-running a folder with other lens
 * settings keeps the finished images (as for any other option) while the aggregate and a
 * note on stderr say the coverage differs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const COCO = join(import.meta.dirname, '../fixtures/coco_mini');
const DATA = `coco:${join(COCO, 'annotations/captions_val2017.json')}:${join(COCO, 'val2017')}`;
const work = mkdtempSync(join(tmpdir(), 'phaselens-lens-cli-'));
const model = join(work, 'tiny');

function cli(args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLURM_') && k !== 'JOB_COMPLETION_INDEX'));
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000, env });
  return { code: r.status, err: r.stderr, out: r.stdout };
}
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const images = (dir: string) => readdirSync(join(dir, 'images')).filter((f) => f.endsWith('.json')).sort().map((f) => json(join(dir, 'images', f)));

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 3 }); // 3 decoder layers (hidden-state indices 0..3), 9 visual tokens
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const base = ['analyze', '--model', model, '--data', DATA, '--chat'];

describe('analyze --lens-layers / --lens-positions', () => {
  it('documents both flags in --help', () => {
    const r = cli(['analyze', '--help']);
    expect(r.out).toMatch(/--lens-layers <spec>[\s\S]*0,8,16-32/);
    expect(r.out).toMatch(/--lens-positions <spec>[\s\S]*::4/);
  });

  for (const [flag, spec, msg] of [
    ['--lens-layers', '4', /--lens-layers "4": layer 4 in "4" is outside 0\.\.3/],
    ['--lens-layers', '', /--lens-layers "": empty/],
    ['--lens-positions', '0-9', /--lens-positions "0-9": visual-token position 9 .* outside 0\.\.8/],
    ['--lens-positions', 'every 4th', /--lens-positions "every 4th": "every 4th" is not an index/],
    ['--lens-positions', '::0', /step of "::0" must be at least 1/],
  ] as const) {
    it(`refuses ${flag} ${JSON.stringify(spec)} with exit code 2 before loading weights`, () => {
      const out = join(work, 'never');
      const r = cli([...base, '--limit', '1', flag, spec, '--out', out]);
      expect(r.err).toMatch(msg);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.err).not.toMatch(/loading weights/);
      expect(r.code).toBe(2);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('a restricted run records its coverage in every output', () => {
    const out = join(work, 'restricted');
    const r = cli([...base, '--limit', '2', '--lens-layers', '0,3', '--lens-positions', '::4', '--out', out]);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    for (const m of images(out)) {
      expect([m.options.lens_layers, m.options.lens_positions]).toEqual(['0,3', '0:9:4']);
      expect([m.logit_lens.layers, m.logit_lens.positions]).toEqual([[0, 3], [0, 4, 8]]);
    }
    const agg = json(join(out, 'aggregate.json'));
    expect(agg.logit_lens).toEqual({ layers: [0, 3], positions: '0:9:4', n_positions: 3, n_visual: 9, full: false, same: true });
    expect(agg.recall.map((s: { n: number }) => s.n)).toEqual([2, 0, 0, 2]);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/LogitLens coverage<\/th><td>Restricted LogitLens[^<]*0, 3 \(2 of 4\)[^<]*0:9:4 \(3 of 9/);
    expect(readFileSync(join(out, 'figures', 'fig5_recall.svg'), 'utf8')).toContain('lens restricted: 2 of 4 layers, 3 of 9 visual tokens');
  });

  it('merge refuses shards made with different lens settings, and merges equal ones', () => {
    const lens = ['--lens-layers', '0,3'];
    const a = join(work, 'shard-a');
    const b = join(work, 'shard-b');
    const c = join(work, 'shard-c');
    expect(cli([...base, '--limit', '4', '--shard', '1/2', '--out', a]).code).toBe(0);
    expect(cli([...base, '--limit', '4', '--shard', '2/2', ...lens, '--out', b]).code).toBe(0);
    const bad = cli(['merge', a, b, '--out', join(work, 'merged-bad')]);
    expect(bad.err).toMatch(/the runs differ in options\.lens_layers: "all" in .*, "0,3" in /);
    expect(bad.err).not.toMatch(/\n\s+at /);
    expect(bad.code).toBe(2);
    // the same coverage written another way is the same run
    expect(cli([...base, '--limit', '4', '--shard', '1/2', '--lens-layers', '3,0-0', '--out', c]).code).toBe(0);
    const merged = join(work, 'merged');
    const ok = cli(['merge', c, b, '--out', merged]);
    expect(ok.err).not.toMatch(/differ/);
    expect(ok.code).toBe(0);
    expect(json(join(merged, 'aggregate.json')).logit_lens).toMatchObject({ layers: [0, 3], full: false, same: true });
  });

  it('re-running a folder with other lens settings keeps the finished images and says the coverage differs', () => {
    const out = join(work, 'resumed');
    expect(cli([...base, '--limit', '2', '--out', out]).code).toBe(0);
    const r = cli([...base, '--limit', '3', '--lens-layers', '0,3', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/1 analysed, 2 already done/);
    expect(r.err).toMatch(/made with different LogitLens coverage/);
    const covers = images(out).map((m) => m.options.lens_layers).sort();
    expect(covers).toEqual(['0,3', 'all', 'all']);
    const agg = json(join(out, 'aggregate.json'));
    expect(agg.logit_lens.same).toBe(false);
    expect(agg.recall.map((s: { n: number }) => s.n)).toEqual([3, 2, 2, 3]);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/images differ in coverage/);
  });
});
