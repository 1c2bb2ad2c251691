/**
 * Dawn's two start-up warnings ("maxDynamic…BuffersPerPipelineLayout artificially reduced")
 * are kept out of the user's stderr by src/cli/phaselens.mjs, unless --verbose. This
 * machine's lavapipe reports 1000000 dynamic buffers, so Dawn prints them here: the
 * --verbose runs show they are really emitted, the plain runs that the filter drops them
 * and nothing else — in a pipe and on a terminal (util-linux `script`), where the child
 * must still see a TTY for its progress bar. Exit codes and signals through the wrapper
 * are covered by test/pipeline/signals.test.ts and test/cluster/slurm.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const IMAGES = join(import.meta.dirname, '../fixtures/coco_mini/val2017');
const NOISE = /artificially reduced/;
const work = mkdtempSync(join(tmpdir(), 'phaselens-dawn-warnings-'));
const model = join(work, 'tiny');
const image = join(IMAGES, readdirSync(IMAGES)[0]);

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 3 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const dump = (...extra: string[]) => ['dump', ...extra, '--model', model, '--image', image, '--chat', '--prompt', 'hi', '--out', join(work, 'd.safetensors')];

describe("Dawn's start-up warnings", () => {
  it('a pipe: dropped, the rest of stderr and the exit code kept; --verbose shows them', () => {
    const plain = spawnSync(process.execPath, [CLI, ...dump()], { encoding: 'utf8', timeout: 120_000 });
    expect(plain.status).toBe(0);
    expect(plain.stderr).not.toMatch(NOISE);
    expect(plain.stderr).toMatch(/^phaselens: GPU /m);
    expect(plain.stdout).toMatch(/wrote \d+ tensors/);
    const verbose = spawnSync(process.execPath, [CLI, ...dump('--verbose')], { encoding: 'utf8', timeout: 120_000 });
    expect(verbose.status).toBe(0);
    expect(verbose.stderr.match(/^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced/gm)).toHaveLength(2);
    const bad = spawnSync(process.execPath, [CLI, 'dump', '--model', join(work, 'none'), '--image', image, '--prompt', 'x', '--out', join(work, 'x.safetensors')], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^phaselens: /m);
  }, 300_000);

  it('a terminal: dropped, and the child still draws its progress on the TTY', () => {
    const run = (args: string[]) => {
      const cmd = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      return spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    };
    const plain = run(['analyze', '--model', model, '--data', `folder:${IMAGES}`, '--limit', '2', '--out', join(work, 'a')]);
    expect(plain.status).toBe(0);
    expect(plain.stdout).not.toMatch(NOISE);
    // the weights' progress line is redrawn with \r only when stderr is a TTY
    expect(plain.stdout).toMatch(/\rloading weights: \d+\/\d+ tensors/);
    const verbose = run(['analyze', '--verbose', '--model', model, '--data', `folder:${IMAGES}`, '--limit', '2', '--out', join(work, 'b')]);
    expect(verbose.status).toBe(0);
    expect(verbose.stdout).toMatch(NOISE);
  }, 300_000);
});
