/**
 * Object boxes on LLaVA-NeXT's views (src/interventions/groups.ts, the grids of
 * models/llava-next.ts): a tiny NeXT checkpoint (make-tiny: 42-px tiles, 14-px patches,
 * P = 3, pinpoints 42×84, 84×42, 84×84) on a 640×480 image, whose groups are checked
 * against a patch map computed by hand:
 *
 * - select_best_resolution → 84×84: a 2×2 tile grid, a 6×6 patch grid; the image is
 *   resized to 84×63 (ceil(480 · 84/640)) and padded 10 px at the top.
 * - unpad (wider than the square grid): int(480 · 6/640) = 4 rows kept, (6 − 4) // 2 = 1
 *   removed at the top and bottom: rows 1..4 of the grid, all 6 columns.
 * - positions from the first image position f: base view f … f+8 (3×3), then the kept
 *   grid f+9 … with 7 per row (6 patches + image_newline): newlines f+15, f+22, f+29, f+36;
 *   37 image positions in all.
 * - what each patch shows in the original image: a base patch 640/3 × 480/3 px; a kept
 *   grid patch 106.67 px wide, and from y = (14 − 10) · 480/63 = 30.48 in steps of
 *   14 · 480/63 = 106.67 px.
 * - box x 300..420, y 200..300: base column 1 (213.3..426.7) × row 1 (160..320) → f+4;
 *   grid columns 2 (213.3..320), 3 (320..426.7) × rows 1 (137.1..243.8), 2 (243.8..350.5)
 *   → f+9 + {7+2, 7+3, 14+2, 14+3} = f+18, f+19, f+25, f+26.
 *
 * Then the refusals (box outside the image, empty, malformed, given to a family without
 * patches), and a knockout sweep with object flows on the checkpoint.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBox } from '../../src/data/vqa.ts';
import { resolveGroup } from '../../src/interventions/groups.ts';
import { knockoutSweep } from '../../src/interventions/knockout.ts';
import type { RgbImage } from '../../src/io/image.ts';
import { requirePatchGrid } from '../../src/pipeline/items.ts';
import { resolveFlows } from '../../src/pipeline/knockout.ts';
import type { Box, VlmFiles } from '../../src/models/vlm.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu } from '../helpers/gpu.ts';
import { openDir } from '../helpers/model.ts';

const IMAGE: RgbImage = { width: 640, height: 480, data: new Uint8Array(640 * 480 * 3).fill(90) };
const BOX: Box = [300, 200, 420, 300];
const spec = { prompt: 'Where is the cat?', chat: true };

let tmp: string;
let next: VlmFiles;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'phaselens-object-box-'));
  await makeTiny({ arch: 'llava_next', out: join(tmp, 'next'), seed: 3, dtype: 'f32' });
  next = await openDir(join(tmp, 'next'));
}, 120_000);
afterAll(async () => {
  await next?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('object boxes on a 2×2 tile grid, against the hand-computed patch map', () => {
  it('grids, newlines and the image span', () => {
    const x = next.prepare(spec, IMAGE, { objectBox: BOX });
    const f = x.groups.image[0];
    expect(x.groups.image[1] - f).toBe(37);
    expect(x.pixels!.shape).toEqual([5, 3, 42, 42]);
    expect(x.groups.grids.map((g) => [g.view, g.rows, g.cols, g.first - f, g.stride])).toEqual([
      ['base', 3, 3, 0, 3],
      ['tiles', 4, 6, 9, 7],
    ]);
    expect(x.groups.newlines.map((p) => p - f)).toEqual([15, 22, 29, 36]);
    const tiles = x.groups.grids[1].box;
    expect(tiles[0]).toBe(0);
    expect(tiles[2]).toBeCloseTo(640, 9);
    expect(tiles[1]).toBeCloseTo((4 * 480) / 63, 9);
    expect(tiles[3]).toBeCloseTo((60 * 480) / 63, 9);
  });

  it('object, image-object, patches and image[r0:r1,c0:c1] select the patches of both views', () => {
    const x = next.prepare(spec, IMAGE, { objectBox: BOX });
    const f = x.groups.image[0];
    const seq = x.ids.length;
    const rel = (g: string) => resolveGroup(g, x.groups, seq).map((p) => p - f);
    expect(rel('object')).toEqual([4, 18, 19, 25, 26]);
    const newlines = [15, 22, 29, 36];
    const patches = Array.from({ length: 37 }, (_, i) => i).filter((i) => !newlines.includes(i));
    expect(rel('patches')).toEqual(patches);
    expect(rel('image-object')).toEqual(patches.filter((i) => ![4, 18, 19, 25, 26].includes(i)));
    // base patch (1, 1) shows x 213.3..426.7, y 160..320: the same four grid patches
    expect(rel('image[1:2,1:2]')).toEqual([4, 18, 19, 25, 26]);
    // base row 0 (y 0..160): grid rows 0 (30.5..137.1) and 1 (137.1..243.8), every column
    expect(rel('image[0:1,0:3]')).toEqual([0, 1, 2, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21]);
  });

  it('a box in the padding-free top strip (y < 30.5) selects only base patches', () => {
    const x = next.prepare(spec, IMAGE, { objectBox: [0, 0, 100, 20] });
    expect(resolveGroup('object', x.groups, x.ids.length).map((p) => p - x.groups.image[0])).toEqual([0]);
  });
});

describe('refusals', () => {
  it('a box outside the image, or empty', () => {
    expect(() => next.prepare(spec, IMAGE, { objectBox: [600, 400, 700, 470] })).toThrow(/object box 600,400,700,470 is outside the 640×480 image/);
    expect(() => next.prepare(spec, IMAGE, { objectBox: [10, 10, 10, 50] })).toThrow(/is empty/);
  });

  it('object groups need a box; a malformed box is named', () => {
    const x = next.prepare(spec, IMAGE);
    expect(() => resolveGroup('object', x.groups, x.ids.length)).toThrow(/needs an object box/);
    expect(() => parseBox('1,2,3', '--object-box')).toThrow(/--object-box must be x0,y0,x1,y1/);
    expect(() => parseBox([5, 5, 2, 9], 'q.jsonl:3: "box"')).toThrow(/q\.jsonl:3: "box" \[5,5,2,9\] is empty/);
    expect(() => parseBox([-1, 0, 2, 2], 'b')).toThrow(/four numbers ≥ 0/);
    expect(parseBox('1.5, 2, 30,40', 'b')).toEqual([1.5, 2, 30, 40]);
  });

  it('a family without patches refuses a box', async () => {
    await makeTiny({ arch: 'instructblip', out: join(tmp, 'blip'), seed: 3, dtype: 'f32' });
    const blip = await openDir(join(tmp, 'blip'));
    try {
      expect(() => requirePatchGrid(blip)).toThrow(/needs a model whose visual tokens are image patches/);
    } finally {
      await blip.close();
    }
  });
});

it('knockout with the object flows runs on the NeXT checkpoint', async () => {
  const gpu = await getGpu();
  const m = await next.load(gpu);
  const x = m.prepare(spec, IMAGE, { objectBox: BOX });
  const flows = resolveFlows(['question<-object', 'question<-image-object', 'last<-image'], x);
  expect(flows[0].src.length).toBe(5);
  expect(flows[1].src.length).toBe(28);
  const r = await knockoutSweep(gpu, m, x, flows, { window: 3 });
  for (const name of ['question<-object', 'question<-image-object', 'last<-image']) {
    expect(r.flows[name].p.length).toBe(m.lm.num_hidden_layers);
    expect(r.flows[name].p.every(Number.isFinite)).toBe(true);
  }
  // blocking the whole image from the last position moves its answer probability
  expect(r.flows['last<-image'].p.some((p) => Math.abs(p - r.answer.p_base) > 1e-6)).toBe(true);
}, 120_000);
