/**
 * make-tiny's Chameleon has a VQ tokenizer whose codes depend on the image (issue 21): the
 * codes vary across one image and between images, so a tiny Chameleon's answer can depend
 * on what it sees; and the same seed writes the same weights. The codes are read at the
 * hook `vq.image_token_ids` of a real forward on two fixture photos.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vlm } from '../../src/models/vlm.ts';
import { runWithCache } from '../../src/probes/cache.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu } from '../helpers/gpu.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const FIX = join(import.meta.dirname, '../fixtures/images');
const root = mkdtempSync(join(tmpdir(), 'phaselens-chameleon-codes-'));
let m: Vlm;

beforeAll(async () => {
  await makeTiny({ arch: 'chameleon', out: join(root, 'a'), seed: 3 });
  m = await loadDir(await getGpu(), join(root, 'a'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function codes(image: string): Promise<number[]> {
  const gpu = await getGpu();
  const x = prepareFile(m, { prompt: '<image>What is this?' }, join(FIX, image));
  const { result, cache } = await runWithCache(gpu, m.hooks, 'vq.image_token_ids', async () => m.forward(gpu, x));
  const ids = cache.get('vq.image_token_ids')!;
  const out = [...(await gpu.read(ids))];
  gpu.release(result, ids);
  return out;
}

describe("make-tiny's Chameleon VQ", () => {
  it('gives codes that vary across an image and between images', async () => {
    const cats = await codes('000000039769.png');
    const other = await codes('000000011813.jpg');
    // 16 px → 8×8 codes of a 48-code book; with the codebook at the latent's scale 16–25 are used
    // (seeds 1 and 5 measured); 8 still says the codes follow the image, not the biases
    expect(cats).toHaveLength(64);
    expect(new Set(cats).size).toBeGreaterThanOrEqual(8);
    expect(new Set(other).size).toBeGreaterThanOrEqual(8);
    const differ = cats.filter((c, i) => c !== other[i]).length;
    expect(differ).toBeGreaterThanOrEqual(16);
  });

  it('writes the same weights for the same seed, others for another', async () => {
    await makeTiny({ arch: 'chameleon', out: join(root, 'b'), seed: 3 });
    await makeTiny({ arch: 'chameleon', out: join(root, 'c'), seed: 4 });
    const file = (d: string) => readFileSync(join(root, d, 'model.safetensors'));
    expect(file('b').equals(file('a'))).toBe(true);
    expect(file('c').equals(file('a'))).toBe(false);
  });
});
