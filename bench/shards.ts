/**
 * Sharding + merge overhead (`npm run bench -- --only shards`): `analyze` of the same 24
 * items (the six shipped COCO images, four copies each; --quick: 6 items, one sample each)
 * on the tiny LLaVA checkpoint,
 *   baseline: one process over every item;
 *   ours:     3 processes `--shard I/3` one after the other into one folder (as the
 *             tasks of `phaselens slurm` do), then `phaselens merge OUT --out OUT`.
 * Both are real CLI runs, after a warm-up run (Mesa's shader cache); every time is the
 * median of 3. A process costs
 * S + n·w for n items; S (start, GPU, weights, pipelines, first-forward warm-up) is
 * solved from the single run (24 items) and a plain run of 8 (`--limit 8`), so
 *   shards-merge-overhead  ratio = (Σ shard walls + merge wall − 2·S − one bare process
 *                          start) / single wall: the sharded run's cost without its extra
 *                          start-ups (target ≤ 1.05);
 *   shards-extra-startups  those start-ups, 2·S + the merge's bare process start
 *                          (`--version`), against the single run's wall time.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTiny } from '../weights-tools/make-tiny.ts';
import type { BenchRecord } from './record.ts';

const CLI = join(import.meta.dirname, '../src/cli/phaselens.mjs');
const COCO = join(import.meta.dirname, '../test/fixtures/coco_mini');
const SHARDS = 3;

/** The shipped COCO images `copies` times over, under new ids; returns the data spec. */
function copiedCoco(dir: string, copies: number): string {
  const ann = JSON.parse(readFileSync(join(COCO, 'annotations/captions_val2017.json'), 'utf8'));
  mkdirSync(join(dir, 'images'), { recursive: true });
  const images = [];
  const annotations = [];
  for (let c = 0; c < copies; c++) {
    for (const im of ann.images) {
      const file = `c${c}_${im.file_name}`;
      copyFileSync(join(COCO, 'val2017', im.file_name), join(dir, 'images', file));
      images.push({ ...im, id: im.id + c * 1e9, file_name: file });
    }
    for (const a of ann.annotations) annotations.push({ ...a, image_id: a.image_id + c * 1e9, id: a.id + c * 1e9 });
  }
  writeFileSync(join(dir, 'captions.json'), JSON.stringify({ ...ann, images, annotations }));
  return `coco:${join(dir, 'captions.json')}:${join(dir, 'images')}`;
}

/** Wall seconds of one CLI run; throws with its output when it fails. */
function timed(args: string[]): number {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLURM_') && k !== 'JOB_COMPLETION_INDEX'));
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`phaselens ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

/** quick: the six images once and one sample per figure (a smoke test, not a measurement). */
export async function benchShards(o: { quick?: boolean } = {}): Promise<BenchRecord[]> {
  const COPIES = o.quick ? 1 : 4;
  const REPS = o.quick ? 1 : 3;
  const work = mkdtempSync(join(tmpdir(), 'phaselens-bench-shards-'));
  try {
    const model = join(work, 'tiny');
    await makeTiny({ arch: 'llava', seed: 0, out: model });
    const data = copiedCoco(join(work, 'coco'), COPIES);
    const run = (out: string, extra: string[] = []) => timed(['analyze', '--model', model, '--data', data, '--out', out, ...extra]);
    run(join(work, 'warm')); // compiles the shaders into Mesa's cache; every run after it starts warm
    const per = (6 * COPIES) / SHARDS;
    // each figure is the median of REPS runs into fresh folders (nothing skipped)
    const median = (f: (rep: number) => number) => {
      const xs = Array.from({ length: REPS }, (_, rep) => f(rep)).sort((a, b) => a - b);
      return xs[REPS >> 1];
    };
    const single = median((rep) => run(join(work, `single${rep}`)));
    const part = median((rep) => run(join(work, `part${rep}`), ['--limit', String(per)]));
    const startup = (SHARDS * part - single) / (SHARDS - 1);
    const bare = median(() => timed(['--version']));
    const shards = Array.from({ length: SHARDS }, (_, i) => median((rep) => run(join(work, `sharded${rep}`), ['--shard', `${i + 1}/${SHARDS}`])));
    const merge = median((rep) => timed(['merge', join(work, `sharded${rep}`), '--out', join(work, `sharded${rep}`)]));
    const extra = (SHARDS - 1) * startup + bare;
    const sharded = shards.reduce((a, t) => a + t, 0) + merge - extra;
    const items = 6 * COPIES;
    return [
      {
        case: 'shards-merge-overhead', shape: [items, SHARDS], dtype: 'f32', unit: 's', ours: sharded, baseline: single, ratio: sharded / single, ratio_name: 'time-ratio-vs-one-process',
        note: `tiny llava, ${items} items; shards ${shards.map((t) => t.toFixed(2)).join(' + ')} s, merge ${merge.toFixed(2)} s, less start-ups (S = ${startup.toFixed(2)} s from a ${per}-item run of ${part.toFixed(2)} s; bare process ${bare.toFixed(2)} s); lower is better, target ≤ 1.05`,
      },
      {
        case: 'shards-extra-startups', shape: [items, SHARDS], dtype: 'f32', unit: 's', ours: extra, baseline: single, ratio: extra / single, ratio_name: 'time-ratio-vs-one-process',
        note: `${SHARDS - 1} more analyze start-ups + the merge process, against the single run's wall time`,
      },
    ];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
