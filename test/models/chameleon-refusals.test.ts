/**
 * Chameleon's bad inputs, refused before any weight loads with the reason (issue 21): a
 * vocabulary_map without IMGIMG entries or with fewer than the codebook's codes, a
 * codebook whose shape disagrees with vq_config, a checkpoint without the VQ encoder
 * (image input refused, text still runs); and the real 7B shape (make-random's
 * chameleon-7b) read as `inspect` describes it. The folders are make-tiny's, edited.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { imageTokenName } from '../../src/io/config-chameleon.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { writeSafetensors } from '../../src/io/safetensors-write.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { familyOf, openModel, parseConfig, validateCheckpoint } from '../../src/models/registry.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { readRefSafetensors } from '../reference/pyref.ts';

const root = mkdtempSync(join(tmpdir(), 'phaselens-chameleon-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const IMAGE = new URL('../fixtures/coco_mini/val2017/000000000802.jpg', import.meta.url).pathname;

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const tiny = async (name: string) => {
  const dir = join(root, name);
  await makeTiny({ arch: 'chameleon', out: dir, seed: 3, dtype: 'f32' });
  return dir;
};

describe('Chameleon refusals', () => {
  const config = (edit: (c: Record<string, any>) => void) => {
    const c = familyOf('chameleon').shapes['chameleon-7b']();
    edit(c);
    return () => parseConfig(JSON.stringify(c), 'x/config.json');
  };

  it('a vocabulary_map without IMGIMG entries', () => {
    const f = config((c) => (c.vocabulary_map = { '<image>': 8711 }));
    expect(f).toThrow(UserError);
    expect(f).toThrow('x/config.json: vocabulary_map has no IMGIMG… entries: the image codes cannot be mapped to token ids');
  });

  it('fewer IMGIMG entries than the codebook has codes', () => {
    expect(config((c) => delete c.vocabulary_map[imageTokenName(5000)])).toThrow(`vocabulary_map has 8191 IMGIMG… entries but no entry for image code 5000 (IMGIMGFAAAZ); the codebook has vq_config.num_embeddings = 8192 codes`);
    expect(config((c) => (c.vq_config.num_embeddings = 9000))).toThrow('no entry for image code 8192');
  });

  it('an IMGIMG name that is not digits written A..J, and no vocabulary_map at all', () => {
    expect(config((c) => (c.vocabulary_map.IMGIMGXYZ = 5))).toThrow('entry "IMGIMGXYZ" is not IMGIMG + digits written A..J + one character');
    expect(config((c) => delete c.vocabulary_map)).toThrow('vocabulary_map is missing');
  });

  it("a codebook whose shape disagrees with vq_config: validation names it before loading", async () => {
    const dir = await tiny('codebook');
    const c = readJson(join(dir, 'config.json'));
    c.vq_config.num_embeddings = 40; // the file's codebook has 48 rows
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
    await expect(validateCheckpoint(nodeDirectory(dir))).rejects.toThrow(/model\.vqmodel\.quantize\.embedding\.weight.*\[40, 8\].*\[48, 8\]|model\.vqmodel\.quantize\.embedding\.weight[^\n]*48/s);
  });

  it('a checkpoint without the VQ model: image input refused with the reason, text still runs', async () => {
    const dir = await tiny('no-vq');
    const file = join(dir, 'model.safetensors');
    const { tensors } = await readRefSafetensors(file);
    const kept = [...tensors].filter(([name]) => !name.startsWith('model.vqmodel.'));
    expect(kept.length).toBeLessThan(tensors.size);
    await writeSafetensors(file, kept.map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape })), (t) => new Uint8Array((tensors.get(t.name)!.data as Float32Array).buffer));
    const m = await openModel(nodeDirectory(dir));
    try {
      expect(() => m.prepare({ prompt: '<image>What is this?' }, readImageFile(IMAGE))).toThrow(
        new UserError('this checkpoint has no VQ image tokenizer weights (model.vqmodel.*, 48-code codebook): image input needs them; text-only prompts work'),
      );
      expect(m.prepare({ prompt: 'What is this?' }).ids.length).toBeGreaterThan(3);
    } finally {
      await m.close();
    }
  });

  it('a prompt without <image> for an image, and <image> without one', async () => {
    const dir = await tiny('prompts');
    const m = await openModel(nodeDirectory(dir));
    try {
      const img = readImageFile(IMAGE);
      expect(() => m.prepare({ prompt: 'What is this?' }, img)).toThrow('an image was given but the prompt has no <image> token');
      expect(() => m.prepare({ prompt: '<image>What?' })).toThrow('the prompt has 1 <image> token(s) but no image was given');
      const x = m.prepare({ prompt: '<image>What?' }, img);
      // <racm3:break> before the 64 placeholders, <eoss> after them
      expect(x.ids[x.groups.image[0] - 1]).toBe(32002);
      expect(x.ids[x.groups.image[1]]).toBe(32003);
      expect(x.ids.at(-1)).toBe(32004); // the separator
    } finally {
      await m.close();
    }
  });

  it("the real 7B shape (make-random's chameleon-7b) parses and describes as inspect shows it", () => {
    const f = familyOf('chameleon');
    const c = parseConfig(JSON.stringify(f.shapes['chameleon-7b']()));
    const lines = f.describeConfig(c).join('\n');
    expect(lines).toContain('512 px, channels 128 × [1, 1, 2, 2, 4], 2 ResNet blocks a level, latent 256 → codebook 8192 × 256; 32×32 = 1024 image tokens');
    expect(lines).toContain('hidden 4096, 32 layers, 32 heads (32 KV), MLP 11008, vocab 65536');
    const vq = f.expectedTensors(c).filter((t) => t.name.startsWith('model.vqmodel.'));
    expect(vq.find((t) => t.name === 'model.vqmodel.quantize.embedding.weight')!.shape).toEqual([8192, 256]);
    expect(vq.find((t) => t.name === 'model.vqmodel.encoder.down.2.block.0.nin_shortcut.weight')!.shape).toEqual([256, 128, 1, 1]);
    expect(vq.every((t) => t.optional && t.generated)).toBe(true);
  });
});
