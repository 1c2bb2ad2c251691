/**
 * Fig. 4c (src/report/figures.ts): the norm-attention map on each patch grid, for a
 * LLaVA-NeXT token layout (base view 3×3 from position 3, then the tiles 4×6 with an
 * image_newline ending each row, stride 7: 3 + 9 + 28 = 40 image positions). The per-cell
 * values are checked against the map's entries picked by hand, the newline keys must not
 * appear, and the report gets one PNG per view.
 */
import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { aggregate } from '../../src/analysis/aggregate.ts';
import { buildFigures, patchAttention } from '../../src/report/figures.ts';
import type { PatchGrid } from '../../src/models/vlm.ts';
import { syntheticImage } from './synthetic.ts';

const grids: PatchGrid[] = [
  { view: 'base', rows: 3, cols: 3, first: 3, stride: 3, box: [0, 0, 640, 480] },
  { view: 'tiles', rows: 4, cols: 6, first: 12, stride: 7, box: [0, 30.5, 640, 457.1] },
];
const seq = 48;
const metrics = (i: number) => {
  const m = syntheticImage(i, { seq, image: [3, 43], L: 4 });
  // key j at layer l: 1000·l + j, so every cell names the key it read
  m.norm_attention!.layer = m.norm_attention!.layer.map((row, l) => row.map((_, j) => 1000 * l + j));
  return { ...m, tokens: { ...m.tokens, newlines: [18, 25, 32, 39], grids } };
};

describe('Fig. 4c: norm attention on the patches of each view', () => {
  it('cells are the mean over layers of their own key; newline keys are not drawn', () => {
    const agg = aggregate([metrics(0), metrics(1)]);
    const layer = agg.norm_attention_map!.layer;
    const base = patchAttention(layer, grids[0]);
    const tiles = patchAttention(layer, grids[1]);
    const meanOver = (j: number) => (0 + 1000 + 2000 + 3000) / 4 + j;
    expect(base).toEqual([0, 1, 2].map((r) => [0, 1, 2].map((c) => meanOver(3 + 3 * r + c))));
    expect(tiles[1][2]).toBe(meanOver(12 + 7 + 2));
    expect(tiles[3][5]).toBe(meanOver(12 + 21 + 5));
    const keys = tiles.flat().map((v) => v - meanOver(0));
    for (const nl of [18, 25, 32, 39]) expect(keys).not.toContain(nl);
  });

  it('one PNG per view in the report, after the heatmap', () => {
    const figs = buildFigures(aggregate([metrics(0)]));
    expect(figs.map((f) => f.file)).toEqual(['fig1_inter.svg', 'fig3_intra.svg', 'fig4_norm_attention.png', 'fig4c_patch_attention_base.png', 'fig4c_patch_attention_tiles.png', 'fig4_image_share.svg', 'fig5_recall.svg']);
    for (const f of figs.filter((f) => f.id.startsWith('fig4c'))) expect(decode(f.data as Uint8Array).channels).toBe(3);
    expect(figs.find((f) => f.id === 'fig4c-tiles')!.caption).toMatch(/4 × 6 patches of the tiles .*image_newline token ending each row is not drawn/);
    // without grids (InstructBLIP, results made before tokens.grids) there is none
    expect(buildFigures(aggregate([syntheticImage(0)])).some((f) => f.id.startsWith('fig4c'))).toBe(false);
  });
});
