/**
 * The page's data sets from picked files (src/web/picked-data.ts), without a browser:
 * the same folders on disk and as a Picked map (Node has Blob) must give the items the
 * CLI's `--data` gives — ids, order, captions, and the image file each item names. The
 * page tests cover COCO and plain folders through real inputs; Winoground, the choice
 * between kinds and the errors are checked here, where they cost nothing.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCoco, loadFolder, loadWinoground, type DataItem } from '../../src/data/index.ts';
import { UserError } from '../../src/errors.ts';
import { pickedData } from '../../src/web/picked-data.ts';
import type { Picked } from '../../src/web/picked.ts';

const COCO = fileURLToPath(new URL('../fixtures/coco_mini/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'phaselens-picked-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder on disk as the page sees it after a pick: relative '/' paths → Blobs. */
function pick(dir: string, name = 'picked'): Picked {
  const files = new Map<string, Blob>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else files.set(relative(dir, p).split(sep).join('/'), new Blob([readFileSync(p)]));
    }
  };
  walk(dir);
  return { name, files };
}

/** What must agree: the image's path in the pick (its name first) stands for the absolute one. */
const view = (items: DataItem[], root: string, name: string) => items.map((i) => ({ ...i, image: `${name}/${relative(root, i.image).split(sep).join('/')}` }));

describe('picked data sets read like --data', () => {
  it('a COCO folder (annotations/ + val2017/)', async () => {
    const d = await pickedData(pick(COCO, 'coco_mini'));
    expect(d.spec).toBe('coco:coco_mini/annotations/captions_val2017.json:coco_mini/val2017');
    const cli = loadCoco(join(COCO, 'annotations', 'captions_val2017.json'), join(COCO, 'val2017'));
    expect(d.items).toEqual(view(cli, COCO, 'coco_mini'));
    expect(d.items[0].captions).toHaveLength(5);
    expect(d.blob(d.items[0])?.size).toBe(statSync(join(COCO, d.items[0].image.slice('coco_mini/'.length))).size);
  });

  it('a Winoground folder (examples.jsonl + images/)', async () => {
    const dir = join(tmp, 'wino');
    mkdirSync(join(dir, 'images'), { recursive: true });
    const line = (id: number) => JSON.stringify({ id, image_0: `ex_${id}_img_0`, image_1: `ex_${id}_img_1`, caption_0: `a dog left of a cat ${id}`, caption_1: `a cat left of a dog ${id}`, tag: 'Object' });
    writeFileSync(join(dir, 'examples.jsonl'), `${line(0)}\n\n${line(1)}\n`);
    for (const id of [0, 1]) for (const k of [0, 1]) writeFileSync(join(dir, 'images', `ex_${id}_img_${k}.${id ? 'jpg' : 'png'}`), 'x');
    const d = await pickedData(pick(dir));
    expect(d.spec).toBe('winoground:picked/examples.jsonl:picked/images');
    expect(d.items.map((i) => i.id)).toEqual(['wino-0-0', 'wino-0-1', 'wino-1-0', 'wino-1-1']);
    expect(d.items).toEqual(view(loadWinoground(join(dir, 'examples.jsonl'), join(dir, 'images')), dir, 'picked'));
  });

  it('picked images with captions.json: a plain folder; a JSON that is not COCO is its captions, not a data set', async () => {
    const dir = join(tmp, 'plain');
    mkdirSync(dir);
    for (const n of ['b.png', 'a.jpg', 'a.png', '.hidden.png']) writeFileSync(join(dir, n), 'x');
    writeFileSync(join(dir, 'captions.json'), JSON.stringify({ 'b.png': [' a box '] }));
    const d = await pickedData(pick(dir, 'selected files'));
    expect(d.spec).toBe('folder:selected files');
    // a.jpg and a.png share a stem: both use their whole name, as --data folder: does
    expect(d.items.map((i) => [i.id, i.captions])).toEqual([['a.jpg', []], ['a.png', []], ['b', ['a box']]]);
    expect(d.items).toEqual(view(loadFolder(dir), dir, 'selected files'));
  });

  it('errors name the picked file', async () => {
    const dir = join(tmp, 'bad');
    mkdirSync(dir);
    writeFileSync(join(dir, 'captions.json'), '{"x.png": ["a"]}');
    writeFileSync(join(dir, 'y.png'), 'x');
    await expect(pickedData(pick(dir, 'bad'))).rejects.toThrow(new UserError('bad/captions.json: names files that are not images in bad: "x.png" (keys are file names with their extension)'));
    const coco = join(tmp, 'coco-no-images');
    mkdirSync(coco);
    writeFileSync(join(coco, 'captions_val2017.json'), JSON.stringify({ images: [{ id: 1, file_name: '1.jpg' }], annotations: [] }));
    await expect(pickedData(pick(coco, 'c'))).rejects.toThrow(/^c\/captions_val2017\.json: no picked folder holds its first image 1\.jpg/);
  });
});
