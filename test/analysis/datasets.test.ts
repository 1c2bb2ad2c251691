// Data set loaders (src/data/*): COCO captions on the committed subset of coco_mini
// (test/fixtures/coco_mini, see test/fixtures/PROVENANCE.md), Winoground and folder data
// sets generated here in their exact formats, --data parsing, and the --limit/--seed sampler.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { formatDataSpec, loadCoco, loadData, loadFolder, loadWinoground, mulberry32, parseDataSpec, safeId, sampleItems, type DataItem } from '../../src/data/index.ts';

const COCO = resolve('test/fixtures/coco_mini');
const COCO_ANN = join(COCO, 'annotations/captions_val2017.json');
const COCO_IMG = join(COCO, 'val2017');

const tmp = mkdtempSync(join(tmpdir(), 'phaselens-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let nDirs = 0;
function freshDir(name = 'd'): string {
  const d = join(tmp, `${nDirs++}-${name}`);
  mkdirSync(d, { recursive: true });
  return d;
}

function png(path: string, w = 4, h = 3, v = 128): void {
  writeFileSync(path, encodePng({ width: w, height: h, channels: 3, depth: 8, data: new Uint8Array(w * h * 3).fill(v) }));
}

function expectUserError(f: () => unknown, ...parts: (string | RegExp)[]): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a UserError').toBeInstanceOf(UserError);
  for (const p of parts) expect((err as Error).message).toMatch(p);
}

/** A COCO captions file in a temp folder next to the fixture's images folder. */
function cocoFile(json: unknown): string {
  const p = join(freshDir('coco'), 'captions.json');
  writeFileSync(p, typeof json === 'string' ? json : JSON.stringify(json));
  return p;
}

describe('COCO captions', () => {
  it('loads the coco_mini subset: file order, ids = stems, 5 trimmed captions, licence meta', () => {
    const items = loadCoco(COCO_ANN, COCO_IMG);
    expect(items.map((i) => i.id)).toEqual(['000000117645', '000000000802', '000000262227', '000000205401', '000000244592', '000000022192']);
    for (const it of items) {
      expect(it.captions).toHaveLength(5);
      expect(it.image).toBe(join(COCO_IMG, `${it.id}.jpg`));
      expect(existsSync(it.image)).toBe(true);
      expect(it.prompt).toBeUndefined();
      for (const c of it.captions) expect(c).toBe(c.trim());
    }
    const plane = items.find((i) => i.id === '000000205401')!;
    expect(plane.captions).toEqual([
      'A plane floating on top of a lake surrounded by mountains.',
      'Lake or river beach with plane in shallow water.',
      'A seaplane parked on the shallow end of the sea as a man approaches.',
      'A BIPLANE AND A SMALL BOAT OUT ON THE WATER',
      'A small boat in water beside a sea airplane.',
    ]);
    expect(plane.meta).toMatchObject({
      dataset: 'coco',
      coco_id: 205401,
      file_name: '000000205401.jpg',
      license: 5,
      license_name: 'Attribution-ShareAlike License',
      license_url: 'http://creativecommons.org/licenses/by-sa/2.0/',
      flickr_url: 'http://farm1.staticflickr.com/143/400309545_6199be36a0_z.jpg',
    });
  });

  it('ignores annotations of images not listed (a trimmed images list selects a subset)', () => {
    const p = cocoFile({
      images: [{ id: 802, file_name: '000000000802.jpg' }],
      annotations: [
        { image_id: 1, id: 1, caption: 'elsewhere' },
        { image_id: 802, id: 2, caption: ' a kitchen\n' },
      ],
    });
    const items = loadCoco(p, COCO_IMG);
    expect(items).toEqual([{ id: '000000000802', image: join(COCO_IMG, '000000000802.jpg'), captions: ['a kitchen'], meta: { dataset: 'coco', coco_id: 802, file_name: '000000000802.jpg' } }]);
  });

  it('rejects malformed files with the file and entry named', () => {
    expectUserError(() => loadCoco(cocoFile('{"images": ['), COCO_IMG), 'captions.json', 'not valid JSON');
    expectUserError(() => loadCoco(cocoFile([]), COCO_IMG), 'expected a COCO captions object');
    expectUserError(() => loadCoco(cocoFile({ annotations: [] }), COCO_IMG), 'no "images" list');
    expectUserError(() => loadCoco(cocoFile({ images: [] }), COCO_IMG), 'no "annotations" list');
    expectUserError(() => loadCoco(cocoFile({ images: [{ id: 1, file_name: 'a.jpg' }, { id: 2 }], annotations: [] }), COCO_IMG), 'images[1]', '"file_name"');
    expectUserError(() => loadCoco(cocoFile({ images: [{ id: 1, file_name: '000000000802.jpg' }, { id: 1, file_name: 'b.jpg' }], annotations: [] }), COCO_IMG), 'images[1]', 'appears twice');
    expectUserError(
      () => loadCoco(cocoFile({ images: [{ id: 1, file_name: '000000000802.jpg' }], annotations: [{ image_id: 1, caption: 'x' }, { image_id: 1, bbox: [0, 0, 1, 1] }] }), COCO_IMG),
      'annotations[1]',
      'instances_',
    );
    expectUserError(() => loadCoco(cocoFile({ images: [{ id: 1, file_name: '000000000802.jpg' }], annotations: [{ caption: 'x' }] }), COCO_IMG), 'annotations[0]', '"image_id"');
    // Two file names with the same stem would overwrite each other's results.
    expectUserError(
      () => loadCoco(cocoFile({ images: [{ id: 1, file_name: '000000000802.jpg' }, { id: 2, file_name: 'x/000000000802.png' }], annotations: [] }), COCO_IMG),
      'images[1]',
      'images[0]',
      '000000000802.json',
    );
    expectUserError(() => loadCoco(join(tmp, 'nope.json'), COCO_IMG), 'nope.json', 'cannot read');
  });

  it('fails when not one listed image is in IMAGES_DIR (wrong folder), but keeps single missing ones', () => {
    expectUserError(() => loadCoco(COCO_ANN, freshDir('empty')), 'none of the 6 images', 'right images folder');
    const p = cocoFile({ images: [{ id: 1, file_name: 'missing.jpg' }, { id: 802, file_name: '000000000802.jpg' }], annotations: [] });
    expect(loadCoco(p, COCO_IMG).map((i) => i.id)).toEqual(['missing', '000000000802']);
  });
});

describe('Winoground', () => {
  const examples = [
    { id: 0, image_0: 'ex_0_img_0', image_1: 'ex_0_img_1', caption_0: 'an old person kisses a young person', caption_1: 'a young person kisses an old person', tag: 'Object', secondary_tag: '', num_main_preds: 1, collapsed_tag: 'Object' },
    { id: 1, image_0: 'ex_1_img_0', image_1: 'ex_1_img_1', caption_0: 'the dog is on the mat', caption_1: 'the mat is on the dog', tag: 'Relation', secondary_tag: 'Symbolic', num_main_preds: 1, collapsed_tag: 'Relation' },
    { id: 7, image_0: 'ex_7_img_0', image_1: 'ex_7_img_1', caption_0: 'a', caption_1: 'b', tag: 'Both', secondary_tag: '', num_main_preds: 2, collapsed_tag: 'Both' },
  ];
  function makeWino(lines: string[], images = true): { file: string; dir: string } {
    const root = freshDir('wino');
    const dir = join(root, 'images');
    mkdirSync(dir);
    if (images) {
      for (const n of ['ex_0_img_0', 'ex_0_img_1', 'ex_1_img_0', 'ex_7_img_0']) png(join(dir, `${n}.png`));
      copyFileSync(join(COCO_IMG, '000000000802.jpg'), join(dir, 'ex_1_img_1.jpg')); // .jpg accepted too; ex_7_img_1 missing
    }
    const file = join(root, 'examples.jsonl');
    writeFileSync(file, lines.join('\n') + '\n');
    return { file, dir };
  }

  it('gives both image–caption pairs of each example, in file order', () => {
    const { file, dir } = makeWino(['', ...examples.map((e) => JSON.stringify(e)).slice(0, 2), '  ', JSON.stringify(examples[2])]);
    const items = loadWinoground(file, dir);
    expect(items.map((i) => i.id)).toEqual(['wino-0-0', 'wino-0-1', 'wino-1-0', 'wino-1-1', 'wino-7-0', 'wino-7-1']);
    expect(items.map((i) => i.captions)).toEqual([['an old person kisses a young person'], ['a young person kisses an old person'], ['the dog is on the mat'], ['the mat is on the dog'], ['a'], ['b']]);
    expect(items.map((i) => i.image.slice(dir.length + 1))).toEqual(['ex_0_img_0.png', 'ex_0_img_1.png', 'ex_1_img_0.png', 'ex_1_img_1.jpg', 'ex_7_img_0.png', 'ex_7_img_1.png']);
    expect(existsSync(items[5].image)).toBe(false); // missing: kept, the runner records it
    expect(items[3].meta).toEqual({
      dataset: 'winoground',
      example: 1,
      pair: 1,
      image_name: 'ex_1_img_1',
      other_image: 'ex_1_img_0',
      other_caption: 'the dog is on the mat',
      tag: 'Relation',
      secondary_tag: 'Symbolic',
      num_main_preds: 1,
      collapsed_tag: 'Relation',
    });
  });

  it('rejects malformed lines with file:line', () => {
    const good = JSON.stringify(examples[0]);
    const bad = (line: string) => {
      const { file, dir } = makeWino([good, '', line]);
      return () => loadWinoground(file, dir);
    };
    expectUserError(bad('{"id": 1, "image_0": '), /examples\.jsonl:3: not valid JSON/);
    expectUserError(bad('[1, 2]'), /examples\.jsonl:3: expected an object, found an array/);
    expectUserError(bad(JSON.stringify({ ...examples[1], caption_1: undefined })), /examples\.jsonl:3: "caption_1" must be a string, found nothing/);
    expectUserError(bad(JSON.stringify({ ...examples[1], image_0: '' })), /examples\.jsonl:3: "image_0" must be a non-empty string/);
    expectUserError(bad(JSON.stringify({ ...examples[1], id: null })), /examples\.jsonl:3: "id" must be a number or string, found null/);
    expectUserError(bad(JSON.stringify({ ...examples[1], id: 0 })), /examples\.jsonl:3: example id 0 already used on line 1/);
    const { file, dir } = makeWino([good], false);
    expectUserError(() => loadWinoground(file, dir), 'none of the 2 images');
    expectUserError(() => loadWinoground(file, join(dir, 'nope')), 'nope', 'cannot list');
  });
});

describe('folder', () => {
  it('takes every png/jpg/jpeg (sorted, case-insensitive extensions), captions from captions.json', () => {
    const dir = freshDir('folder');
    for (const n of ['b.png', 'A.PNG', 'c.jpeg', 'cat photo.jpg', '.hidden.png']) png(join(dir, n));
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    mkdirSync(join(dir, 'sub.png')); // a folder named like an image is not an image
    writeFileSync(join(dir, 'captions.json'), JSON.stringify({ 'b.png': [' a gray square ', 'grey'], 'cat photo.jpg': [] }));
    const items = loadFolder(dir);
    expect(items).toEqual([
      { id: 'A', image: join(dir, 'A.PNG'), captions: [], meta: { dataset: 'folder', file_name: 'A.PNG' } },
      { id: 'b', image: join(dir, 'b.png'), captions: ['a gray square', 'grey'], meta: { dataset: 'folder', file_name: 'b.png' } },
      { id: 'c', image: join(dir, 'c.jpeg'), captions: [], meta: { dataset: 'folder', file_name: 'c.jpeg' } },
      { id: 'cat_photo', image: join(dir, 'cat photo.jpg'), captions: [], meta: { dataset: 'folder', file_name: 'cat photo.jpg' } },
    ]);
  });

  it('uses the whole file name when two images share a stem; no captions.json is fine', () => {
    const dir = freshDir('stems');
    for (const n of ['x.png', 'x.jpg', 'y.png']) png(join(dir, n));
    expect(loadFolder(dir).map((i) => [i.id, i.captions])).toEqual([
      ['x.jpg', []],
      ['x.png', []],
      ['y', []],
    ]);
  });

  it('rejects an empty folder and a bad captions.json', () => {
    expectUserError(() => loadFolder(freshDir('none')), 'no .png, .jpg or .jpeg images');
    const dir = freshDir('badcaps');
    png(join(dir, 'a.png'));
    const caps = (j: string) => {
      writeFileSync(join(dir, 'captions.json'), j);
      return () => loadFolder(dir);
    };
    expectUserError(caps('{"a.png": ["x",'), 'captions.json', 'not valid JSON');
    expectUserError(caps('["x"]'), 'captions.json', 'found an array');
    expectUserError(caps('{"a.png": "x"}'), 'captions.json', '"a.png"', 'list of caption strings');
    expectUserError(caps('{"a.png": ["x", 3]}'), '"a.png"', 'non-string');
    expectUserError(caps('{"a": ["x"], "b.png": ["y"]}'), 'not images in', '"a", "b.png"');
  });
});

describe('--data parsing', () => {
  it('parses each kind to absolute paths, relative to cwd', () => {
    expect(parseDataSpec('coco:annotations/captions_val2017.json:val2017', COCO)).toEqual({ kind: 'coco', annotations: COCO_ANN, images: COCO_IMG });
    expect(parseDataSpec(`folder:${COCO_IMG}`)).toEqual({ kind: 'folder', dir: COCO_IMG });
    const { root } = (() => {
      const root = freshDir('spec');
      mkdirSync(join(root, 'images'));
      writeFileSync(join(root, 'examples.jsonl'), '');
      return { root };
    })();
    const s = parseDataSpec('winoground:examples.jsonl:images', root);
    expect(s).toEqual({ kind: 'winoground', examples: join(root, 'examples.jsonl'), images: join(root, 'images') });
    expect(formatDataSpec(s)).toBe(`winoground:${join(root, 'examples.jsonl')}:${join(root, 'images')}`);
  });

  it("splits at the first ':' whose prefix is an existing file, so paths may contain ':'", () => {
    const root = freshDir('colon');
    mkdirSync(join(root, 'a:b'));
    mkdirSync(join(root, 'img:s'));
    writeFileSync(join(root, 'a:b', 'c.json'), '{}');
    writeFileSync(join(root, 'plain.json'), '{}');
    expect(parseDataSpec('coco:a:b/c.json:img:s', root)).toEqual({ kind: 'coco', annotations: join(root, 'a:b/c.json'), images: join(root, 'img:s') });
    expect(parseDataSpec('coco:plain.json:img:s', root)).toEqual({ kind: 'coco', annotations: join(root, 'plain.json'), images: join(root, 'img:s') });
    expect(parseDataSpec('folder:img:s', root)).toEqual({ kind: 'folder', dir: join(root, 'img:s') });
  });

  it('names what is wrong', () => {
    expectUserError(() => parseDataSpec('coco'), 'expected coco:ANNOTATIONS.json:IMAGES_DIR | winoground');
    expectUserError(() => parseDataSpec('imagenet:x:y'), 'unknown data set kind "imagenet"');
    expectUserError(() => parseDataSpec('folder:'), 'give the folder');
    expectUserError(() => parseDataSpec('coco:x.json'), 'coco:ANNOTATIONS.json:IMAGES_DIR', 'two parts');
    expectUserError(() => parseDataSpec('coco::dir'), 'two parts');
    expectUserError(() => parseDataSpec('winoground:nope.jsonl:dir', tmp), 'EXAMPLES.jsonl', join(tmp, 'nope.jsonl'), 'no such file');
    expectUserError(() => parseDataSpec(`coco:${COCO_IMG}:${COCO_IMG}`), 'ANNOTATIONS.json', 'not a file');
    expectUserError(() => parseDataSpec(`coco:${COCO_ANN}:nope`, tmp), 'IMAGES_DIR', 'no such folder');
    expectUserError(() => parseDataSpec(`coco:${COCO_ANN}:${COCO_ANN}`), 'IMAGES_DIR', 'not a folder');
    expectUserError(() => parseDataSpec(`folder:${COCO_ANN}`), 'DIR', 'not a folder');
  });

  it('loadData takes a spec string', () => {
    expect(loadData(`coco:${COCO_ANN}:${COCO_IMG}`).length).toBe(6);
    expect(loadData(`folder:${COCO_IMG}`).map((i) => i.id)).toEqual(['000000000802', '000000022192', '000000117645', '000000205401', '000000244592', '000000262227']);
  });
});

describe('--limit / --seed sampling', () => {
  const items = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `img${String(i).padStart(4, '0')}` }));

  it('mulberry32 matches the published generator (values from a separate Python port)', () => {
    const want: Record<number, number[]> = {
      0: [0.26642920868471265, 0.0003297457005828619, 0.2232720274478197],
      1: [0.6270739405881613, 0.002735721180215478, 0.5274470399599522],
      12345: [0.9797282677609473, 0.3067522644996643, 0.484205421525985],
    };
    for (const [seed, vals] of Object.entries(want)) {
      const r = mulberry32(Number(seed));
      expect([r(), r(), r()]).toEqual(vals);
    }
  });

  it('follows the documented rule (worked by hand from the mulberry32 values above)', () => {
    // Sorted ids a..e. Seed 1: i=0 j=⌊.627·5⌋=3 → d b c a e; i=1 j=1+⌊.0027·4⌋=1; i=2 j=2+⌊.527·3⌋=3 → d b a c e.
    // The sample {d, b, a} comes back in the data set's order.
    const five = ['e', 'c', 'a', 'd', 'b'].map((id) => ({ id }));
    expect(sampleItems(five, 3, 1).map((i) => i.id)).toEqual(['a', 'd', 'b']);
    // Seed 0: i=0 j=⌊.266·5⌋=1 → b a c d e; i=1 j=1+⌊.0003·4⌋=1.
    expect(sampleItems(five, 2, 0).map((i) => i.id)).toEqual(['a', 'b']);
  });

  it('same seed → same sample whatever the file order; other seeds differ; larger limits contain smaller ones', () => {
    const all = items(100);
    const a = sampleItems(all, 10, 42);
    expect(a).toHaveLength(10);
    expect(new Set(a).size).toBe(10);
    expect(sampleItems(all, 10, 42)).toEqual(a);
    const reversed = all.slice().reverse();
    const b = sampleItems(reversed, 10, 42);
    expect(b.map((i) => i.id).sort()).toEqual(a.map((i) => i.id).sort());
    expect(b.map((i) => i.id)).toEqual(a.map((i) => i.id).reverse()); // returned in the given order
    const sets = [0, 1, 2, 3, 4].map((s) => sampleItems(all, 10, s).map((i) => i.id).join());
    expect(new Set(sets).size).toBe(5);
    const big = new Set(sampleItems(all, 40, 42).map((i) => i.id));
    for (const it of a) expect(big.has(it.id)).toBe(true);
  });

  it('is uniform: each of 3 items is picked about a third of the time', () => {
    const three = items(3);
    const count = [0, 0, 0];
    for (let s = 0; s < 3000; s++) count[Number(sampleItems(three, 1, s)[0].id.slice(3))]++;
    for (const c of count) expect(Math.abs(c - 1000)).toBeLessThan(120); // ~5 standard deviations
  });

  it('no limit or limit ≥ n keeps every item in file order; bad values are UserErrors', () => {
    const all = items(5).reverse();
    expect(sampleItems(all)).toEqual(all);
    expect(sampleItems(all, 5, 3)).toEqual(all);
    expect(sampleItems(all, 400, 3)).toEqual(all);
    expect(sampleItems(all)).not.toBe(all);
    expectUserError(() => sampleItems(all, 0), '--limit must be a positive integer');
    expectUserError(() => sampleItems(all, 2.5), '--limit');
    expectUserError(() => sampleItems(all, 2, -1), '--seed must be an integer');
    expectUserError(() => sampleItems(all, 2, 2 ** 32), '--seed');
  });

  it('samples real data sets: a COCO draw is reproducible', () => {
    const coco: DataItem[] = loadCoco(COCO_ANN, COCO_IMG);
    const a = sampleItems(coco, 3, 7).map((i) => i.id);
    expect(a).toHaveLength(3);
    expect(sampleItems(coco.slice().reverse(), 3, 7).map((i) => i.id).sort()).toEqual(a.slice().sort());
  });
});

describe('safeId', () => {
  it('keeps safe names and replaces the rest', () => {
    expect(safeId('000000397133')).toBe('000000397133');
    expect(safeId('wino-3-1')).toBe('wino-3-1');
    expect(safeId('a b/c:d')).toBe('a_b_c_d');
    expect(safeId('..')).toBe('_.');
    expect(safeId('.hidden')).toBe('_hidden');
    expect(safeId('')).toBe('_');
    expect(safeId('x'.repeat(300))).toHaveLength(200);
  });
});
