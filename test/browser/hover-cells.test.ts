/**
 * The hover view's layout (src/web/hover.ts) from a prepared input's grids: on the tiny
 * LLaVA-NeXT of test/interventions/object-box.test.ts (640×480 → base view 3×3, tiles 4 rows
 * × 6 columns, each row ended by an image_newline), one panel per view and a cell per
 * patch, the cells naming the tokens of the hand-computed map (base 0…8, tiles from 9 with 7
 * per row, the newlines 15, 22, 29, 36 drawn nowhere); LLaVA-1.5's one grid fills one
 * square panel, its centre cell token 4 of the 3×3 grid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../../src/io/image.ts';
import type { VlmFiles } from '../../src/models/vlm.ts';
import { gridCells } from '../../src/web/hover.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { openDir } from '../helpers/model.ts';

const IMAGE: RgbImage = { width: 640, height: 480, data: new Uint8Array(640 * 480 * 3).fill(90) };
let tmp: string;
const opened: VlmFiles[] = [];
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'phaselens-hover-'));
  for (const arch of ['llava_next', 'llava']) {
    await makeTiny({ arch, out: join(tmp, arch), seed: 1, dtype: 'f32' });
    opened.push(await openDir(join(tmp, arch)));
  }
}, 120_000);
afterAll(async () => {
  for (const f of opened) await f.close();
  rmSync(tmp, { recursive: true, force: true });
});

const source = (f: VlmFiles) => {
  const x = f.prepare({ prompt: 'What is this?', chat: true }, IMAGE);
  const [s0, s1] = x.groups.image;
  return { grids: x.groups.grids, imageStart: s0, image: IMAGE, nVisual: s1 - s0, layers: [], positions: [], topIds: [], topProbs: [], piece: () => '' };
};

describe('hover cells', () => {
  it('LLaVA-NeXT: a base-view panel and a tiles panel, the patches of the hand-computed map', () => {
    const { cells, width, height } = gridCells(source(opened[0]));
    const base = cells.filter((c) => c.x < 336);
    const tiles = cells.filter((c) => c.x >= 336);
    expect(base.map((c) => c.token)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(tiles.map((c) => c.token)).toEqual([0, 1, 2, 3].flatMap((r) => [0, 1, 2, 3, 4, 5].map((c) => 9 + 7 * r + c)));
    expect(cells.some((c) => [15, 22, 29, 36].includes(c.token))).toBe(false);
    expect(base[4].where).toBe('base view, patch row 1, column 1');
    expect(tiles[6 + 2].where).toBe('tiles, patch row 1, column 2');
    // square patches: the tiles panel is 336 wide and 4/6 of it high; the canvas holds both panels
    expect(tiles[0].w).toBeCloseTo(56, 9);
    expect(tiles[0].h).toBeCloseTo(56, 9);
    expect([width, height]).toEqual([2 * 336 + 8, 336]);
  });

  it('LLaVA-1.5: one square panel, the centre cell is token 4 of the 3×3 grid', () => {
    const { cells, width, height } = gridCells(source(opened[1]));
    expect([width, height]).toEqual([336, 336]);
    const centre = cells.find((c) => c.x <= 168 && 168 < c.x + c.w && c.y <= 168 && 168 < c.y + c.h)!;
    expect(centre.token).toBe(4);
    expect(centre.where).toBe('patch row 1, column 1');
  });
});
