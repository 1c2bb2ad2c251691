// Image decoding and HF image processors (src/io/image.ts, src/io/image-processor.ts)
// against Pillow + numpy: test/reference/pillow_preprocess.py writes synthetic PNG/JPEG
// images with Pillow and computes `Image.open(f).convert('RGB')`, the resized + cropped
// uint8 image and the normalised float32 pixel_values the way HF's slow processors do.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { encode as encodePng } from 'fast-png';
import { UserError } from '../../src/errors.ts';
import { decodeImage, readImageHeader, type RgbImage } from '../../src/io/image.ts';
import {
  centerCrop,
  expandToSquare,
  padColorFromMean,
  parseImageProcessorConfig,
  pillowResize,
  preprocessImage,
  resizeAndCrop,
  shortestEdgeSize,
  toPixelValues,
  type ImageProcessorConfig,
} from '../../src/io/image-processor.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { readImageProcessorConfig } from '../../src/io/model-files.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';

const loadImageProcessorConfig = (d: string) => readImageProcessorConfig(nodeDirectory(d));

const PY = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'reference', 'pillow_preprocess.py');
const FIX_IMAGES = join(import.meta.dirname, '..', 'fixtures', 'images');
const LLAVA_DIR = join(import.meta.dirname, '..', '..', 'weights-tools', 'assets', 'llava-1.5-7b-hf');
const havePillow = spawnSync(PY, ['-c', 'import PIL, numpy'], { stdio: 'ignore' }).status === 0;

function expectUserError(f: () => unknown, ...parts: (string | RegExp)[]): UserError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a UserError').toBeInstanceOf(UserError);
  for (const p of parts) expect((err as Error).message).toMatch(p);
  return err as UserError;
}

/** max |a − b| and the fraction of differing elements. */
function diff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number; frac: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    sum += d;
    if (d !== 0) n++;
  }
  return { max, mean: sum / a.length, frac: n / a.length };
}

// The real LLaVA-1.5 processor config (weights-tools/assets) and InstructBLIP's, as
// Salesforce/instructblip-vicuna-7b ships it.
const llavaJson = JSON.parse(readFileSync(join(LLAVA_DIR, 'preprocessor_config.json'), 'utf8'));
const blipJson = {
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_processor_type: 'BlipImageProcessor',
  image_std: [0.26862954, 0.26130258, 0.27577711],
  processor_class: 'InstructBlipProcessor',
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { height: 224, width: 224 },
};
const tinyJson = { ...llavaJson, size: { shortest_edge: 9 }, crop_size: { height: 7, width: 7 } };
// Crop taller than the resized image: HF zero-pads before cropping.
const padCropJson = { ...llavaJson, size: { shortest_edge: 6 }, crop_size: { height: 10, width: 4 } };
const filterJson = (resample: number) => ({ ...llavaJson, size: { shortest_edge: 23 }, crop_size: { height: 20, width: 20 }, resample });

const CONFIGS: Record<string, unknown> = {
  clip336: llavaJson,
  clipTiny: tinyJson,
  clipPadCrop: padCropJson,
  blip224: blipJson,
  lanczos: filterJson(1),
  bilinear: filterJson(2),
  box: filterJson(4),
  hamming: filterJson(5),
};

interface Entry {
  image: string;
  config: string;
  pad: boolean;
  out: string;
}

describe('decoding and preprocessing vs Pillow (needs /usr/bin/python3 with Pillow and numpy)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phaselens-img-'));
  let images: string[] = [];
  const entries: Entry[] = [];
  const load = (e: Entry) => ({
    rgb: new Uint8Array(readFileSync(e.out + '.rgb')),
    u8: new Uint8Array(readFileSync(e.out + '.u8')),
    f32: new Float32Array(new Uint8Array(readFileSync(e.out + '.f32')).buffer),
  });

  beforeAll(() => {
    const made: string[] = JSON.parse(execFileSync(PY, [SCRIPT, 'make-images', dir], { encoding: 'utf8' }));
    // An Adam7-interlaced PNG (Pillow does not write those; fast-png's encoder does).
    const w = 23;
    const h = 17;
    const px = new Uint8Array(w * h * 4).map((_, i) => (i * 37 + (i >> 5) * 11) & 255);
    writeFileSync(join(dir, 'interlaced.png'), encodePng({ width: w, height: h, data: px, channels: 4, depth: 8 }, { interlace: 'Adam7' }));
    images = [...made.map((f) => join(dir, f)), join(dir, 'interlaced.png'), ...['000000039769.png', '000000229358.jpg', '000000011813.jpg'].map((f) => join(FIX_IMAGES, f))];
    const add = (image: string, config: string, pad = false) => entries.push({ image, config, pad, out: join(dir, `${entries.length}`) });
    for (const im of images) for (const c of ['clip336', 'clipTiny', 'clipPadCrop', 'blip224']) add(im, c);
    for (const im of images.filter((f) => /square|big|wide|039769/.test(f))) for (const c of ['lanczos', 'bilinear', 'box', 'hamming']) add(im, c);
    for (const im of images.filter((f) => /wide|tall|039769|011813/.test(f))) add(im, 'clip336', true);
    const spec = entries.map((e) => ({ image: e.image, out: e.out, config: CONFIGS[e.config], pad_to_square: e.pad }));
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    execFileSync(PY, [SCRIPT, 'run', join(dir, 'spec.json')], { encoding: 'utf8', maxBuffer: 1 << 26 });
  }, 120_000);

  it('PNG decoding equals Pillow convert("RGB") exactly, every colour type and depth', () => {
    const pngs = images.filter((f) => f.endsWith('.png'));
    expect(pngs.length).toBeGreaterThanOrEqual(19);
    for (const f of pngs) {
      const e = entries.find((x) => x.image === f)!;
      const ours = readImageFile(f);
      const d = diff(ours.data, load(e).rgb);
      expect(d.max, f).toBe(0);
    }
  });

  it('JPEG decoding is within a few levels of Pillow (libjpeg-turbo)', () => {
    // Upsampling and colour conversion follow libjpeg-turbo exactly; the IDCT is jpeg-js's,
    // which rounds differently from libjpeg's ISLOW IDCT. Measured here (jpeg-js 0.4.4 vs
    // Pillow 9.4 / libjpeg-turbo 2.1): colour JPEGs (4:2:0, 4:2:2, 4:4:4, progressive,
    // COCO photos) max 3 levels, mean 0.13-0.16, ~12% of values differ; grayscale max 1,
    // mean 0.07; CMYK (jpeg-js's own conversion) max 1. Without the libjpeg upsampling,
    // jpeg-js alone was up to 91 levels off (mean 8.7) on photo420.
    const jpgs = images.filter((f) => f.endsWith('.jpg'));
    expect(jpgs.length).toBe(10);
    for (const f of jpgs) {
      const e = entries.find((x) => x.image === f)!;
      const d = diff(readImageFile(f).data, load(e).rgb);
      const name = f.split('/').pop()!;
      console.log(`JPEG decode vs Pillow ${name}: max ${d.max}, mean ${d.mean.toFixed(3)}, ${(d.frac * 100).toFixed(1)}% differ`);
      const gray = name === 'gray.jpg' || name === 'cmyk.jpg';
      expect(d.max, name).toBeLessThanOrEqual(gray ? 1 : 4);
      expect(d.mean, name).toBeLessThanOrEqual(gray ? 0.1 : 0.35); // tiny420: 27 values, mean 0.26
    }
  });

  it('resize + crop equals Pillow (≤ 1/255) on the same decoded pixels, every config', () => {
    let worst = 0;
    let differing = 0;
    let total = 0;
    for (const e of entries) {
      const ref = load(e);
      const e0 = entries.find((x) => x.image === e.image)!;
      const shape = JSON.parse(JSON.stringify(readImageHeader(readFileSync(e.image))));
      const src: RgbImage = { width: shape.width, height: shape.height, data: load(e0).rgb };
      const cfg = parseImageProcessorConfig(CONFIGS[e.config], e.config);
      const ours = resizeAndCrop(src, cfg, { padToSquare: e.pad });
      const d = diff(ours.data, ref.u8);
      worst = Math.max(worst, d.max);
      differing += d.frac * ref.u8.length;
      total += ref.u8.length;
      expect(d.max, `${e.image} ${e.config}${e.pad ? ' pad' : ''}`).toBeLessThanOrEqual(1);
    }
    console.log(`resize+crop vs Pillow over ${entries.length} cases: max diff ${worst}, ${differing} of ${total} values differ`);
    // Pillow's fixed-point arithmetic is reproduced exactly, so in practice nothing differs.
    expect(differing).toBe(0);
  });

  it('pixel_values equal the numpy computation (≤ 1e-6)', () => {
    let worst = 0;
    for (const e of entries) {
      const ref = load(e);
      const cfg = parseImageProcessorConfig(CONFIGS[e.config], e.config);
      const [h, w] = [cfg.doCenterCrop ? cfg.cropSize.height : null, cfg.doCenterCrop ? cfg.cropSize.width : null];
      const u8: RgbImage = { width: 0, height: 0, data: ref.u8 };
      const n = ref.u8.length / 3;
      if (h !== null && w !== null) [u8.height, u8.width] = [h, w];
      else if ('height' in cfg.size) [u8.height, u8.width] = [cfg.size.height, cfg.size.width];
      else [u8.height, u8.width] = [1, n];
      const pv = toPixelValues(u8, cfg);
      const d = diff(pv.data, ref.f32);
      worst = Math.max(worst, d.max);
      expect(d.max, `${e.image} ${e.config}`).toBeLessThanOrEqual(1e-6);
    }
    console.log(`pixel_values vs numpy: max diff ${worst}`);
  });

  it('end to end (our decoder + processor) vs Pillow + HF steps', () => {
    let jpegMax = 0;
    let jpegMean = 0;
    for (const e of entries) {
      const ref = load(e);
      const cfg = parseImageProcessorConfig(CONFIGS[e.config], e.config);
      const name = `${e.image.split('/').pop()} ${e.config}${e.pad ? ' pad' : ''}`;
      const img = readImageFile(e.image);
      const ours = preprocessImage(img, cfg, { padToSquare: e.pad });
      if (e.image.endsWith('.png')) {
        expect(diff(ours.data, ref.f32).max, name).toBe(0);
      } else {
        // JPEG: the IDCT difference above, through the resize. Bound in uint8 levels.
        const d = diff(resizeAndCrop(img, cfg, { padToSquare: e.pad }).data, ref.u8);
        jpegMax = Math.max(jpegMax, d.max);
        jpegMean = Math.max(jpegMean, d.mean);
        expect(d.max, name).toBeLessThanOrEqual(6); // bicubic overshoot on upscaling: 5 seen
        expect(d.mean, name).toBeLessThanOrEqual(0.5); // upscaled 7×5 → 224×224: mean 0.34
      }
    }
    // Measured: max 4 levels for photo-sized images, 5 on the tiny ones upscaled; mean ≤ 0.2 levels for photo-sized images (≈ 0.003 in
    // normalised pixel values), 0.34 for the 7×5 image upscaled to 224×224.
    console.log(`JPEG end to end (resized + cropped uint8) vs Pillow: max ${jpegMax}, worst mean ${jpegMean.toFixed(3)} levels`);
  });

  it('the real LLaVA config gives [3, 336, 336]; BLIP gives [3, 224, 224]', async () => {
    const img = readImageFile(join(FIX_IMAGES, '000000039769.png'));
    expect(preprocessImage(img, await loadImageProcessorConfig(LLAVA_DIR)).shape).toEqual([3, 336, 336]);
    expect(preprocessImage(img, parseImageProcessorConfig(blipJson, 'blip')).shape).toEqual([3, 224, 224]);
  });
});

describe('processor steps (no Python)', () => {
  it('parses the real LLaVA-1.5 preprocessor_config.json', async () => {
    const cfg = await loadImageProcessorConfig(LLAVA_DIR);
    expect(cfg).toEqual<ImageProcessorConfig>({
      source: join(LLAVA_DIR, 'preprocessor_config.json'),
      processorType: 'CLIPImageProcessor',
      doResize: true,
      size: { shortestEdge: 336 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 336, width: 336 },
      doRescale: true,
      rescaleFactor: 0.00392156862745098,
      doNormalize: true,
      imageMean: [0.48145466, 0.4578275, 0.40821073],
      imageStd: [0.26862954, 0.26130258, 0.27577711],
      imageGridPinpoints: null,
    });
    const blip = parseImageProcessorConfig(blipJson, 'b');
    expect(blip.processorType).toBe('BlipImageProcessor');
    expect(blip.doCenterCrop).toBe(false);
    expect(blip.size).toEqual({ height: 224, width: 224 });
  });

  it('reads legacy forms of size / crop_size like get_size_dict', () => {
    expect(parseImageProcessorConfig({ image_processor_type: 'CLIPImageProcessor', size: 224, crop_size: 224 }, 'x').size).toEqual({ shortestEdge: 224 });
    expect(parseImageProcessorConfig({ feature_extractor_type: 'CLIPFeatureExtractor', size: 224, crop_size: 224 }, 'x').cropSize).toEqual({ height: 224, width: 224 });
    expect(parseImageProcessorConfig({ image_processor_type: 'BlipImageProcessor', size: 384 }, 'x').size).toEqual({ height: 384, width: 384 });
  });

  it('refuses unsupported or malformed configs with the file named', async () => {
    expectUserError(() => parseImageProcessorConfig({ image_processor_type: 'SiglipImageProcessor' }, 'p.json'), 'p.json', 'Siglip', 'not supported');
    expectUserError(() => parseImageProcessorConfig({}, 'p.json'), 'p.json', 'image_processor_type');
    expectUserError(() => parseImageProcessorConfig({ ...llavaJson, resample: 0 }, 'p.json'), 'resample=0', 'NEAREST');
    expectUserError(() => parseImageProcessorConfig({ ...llavaJson, image_mean: [0.5, 0.5] }, 'p.json'), 'image_mean');
    expectUserError(() => parseImageProcessorConfig({ ...llavaJson, size: { shortest_edge: -3 } }, 'p.json'), 'shortest_edge', 'positive integer');
    expectUserError(() => parseImageProcessorConfig({ ...llavaJson, do_resize: 'yes' }, 'p.json'), 'do_resize');
    const missing = await loadImageProcessorConfig(mkdtempSync(join(tmpdir(), 'phaselens-noproc-'))).then(() => undefined, (e: unknown) => e);
    expect(missing).toBeInstanceOf(UserError);
    expect((missing as Error).message).toContain('no preprocessor_config.json');
  });

  it('shortest-edge sizes truncate like int(s * long / short)', () => {
    expect(shortestEdgeSize(480, 640, 336)).toEqual([336, 448]);
    expect(shortestEdgeSize(500, 333, 336)).toEqual([504, 336]); // 336*500/333 = 504.50…
    expect(shortestEdgeSize(423, 640, 336)).toEqual([336, 508]); // 508.37…
    expect(shortestEdgeSize(100, 100, 336)).toEqual([336, 336]);
    expect(shortestEdgeSize(3, 1000, 336)).toEqual([336, 112000]);
  });

  it('centre crop offsets floor; small images are zero padded with ceil on top/left', () => {
    const img: RgbImage = { width: 5, height: 4, data: new Uint8Array(60).map((_, i) => i + 1) };
    const c = centerCrop(img, 2, 2); // top = 1, left = 1
    expect([...c.data.subarray(0, 3)]).toEqual([...img.data.subarray((1 * 5 + 1) * 3, (1 * 5 + 1) * 3 + 3)]);
    const p = centerCrop(img, 7, 3); // pad height 4 → 7: 2 rows on top (ceil(3/2)), 1 below
    expect(p.width).toBe(3);
    expect(p.height).toBe(7);
    expect([...p.data.subarray(0, 9)]).toEqual(new Array(9).fill(0));
    expect([...p.data.subarray(9, 18)]).toEqual(new Array(9).fill(0));
    expect([...p.data.subarray(18, 21)]).toEqual([...img.data.subarray(3, 6)]); // row 0, column 1
  });

  it('expand2square pads with int(mean*255) = (122, 116, 104), image centred', () => {
    expect(padColorFromMean([0.48145466, 0.4578275, 0.40821073])).toEqual([122, 116, 104]);
    const img: RgbImage = { width: 2, height: 5, data: new Uint8Array(30).fill(7) };
    const sq = expandToSquare(img, [122, 116, 104]);
    expect([sq.width, sq.height]).toEqual([5, 5]);
    const row = [...sq.data.subarray(0, 15)];
    expect(row).toEqual([122, 116, 104, 7, 7, 7, 7, 7, 7, 122, 116, 104, 122, 116, 104]); // (5-2)//2 = 1 on the left
  });

  it('pillowResize keeps constant images constant and copies at the same size', () => {
    const img: RgbImage = { width: 37, height: 23, data: new Uint8Array(37 * 23 * 3).fill(200) };
    for (const r of [1, 2, 3, 4, 5]) {
      const out = pillowResize(img, 11, 50, r);
      expect(out.data.every((v) => v === 200)).toBe(true);
    }
    const same = pillowResize(img, 37, 23);
    expect(same.data).toEqual(img.data);
    expect(same.data).not.toBe(img.data);
    expectUserError(() => pillowResize(img, 0, 5), 'cannot resize');
  });
});

// ---------------------------------------------------------------------------------------
// Bad input: each a clear UserError, before any decoding where the header says enough.

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A PNG that is only a signature, an IHDR (valid CRC) and IEND: no pixel data. */
function pngHeaderOnly(width: number, height: number, depth = 8, colorType = 2): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const td = new Uint8Array(4 + data.length);
    td.set([...type].map((c) => c.charCodeAt(0)));
    td.set(data, 4);
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(td, 4);
    dv.setUint32(8 + data.length, crc32(td));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([depth, colorType, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** SOI, a JFIF APP0, an SOF0 header with the given size, EOI. */
function jpegHeaderOnly(width: number, height: number): Uint8Array {
  const app0 = [0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00];
  const sof = [0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 255, width >> 8, width & 255, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return new Uint8Array([0xff, 0xd8, ...app0, ...sof, 0xff, 0xd9]);
}

describe('bad input is refused with a clear UserError', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'phaselens-bad-'));
  const png = readFileSync(join(FIX_IMAGES, '000000039769.png'));
  const jpg = readFileSync(join(FIX_IMAGES, '000000229358.jpg'));

  it('not an image', () => {
    const f = join(tmp, 'notes.txt');
    writeFileSync(f, 'hello, this is text\n');
    expectUserError(() => readImageFile(f), f, 'not a PNG or JPEG');
    expectUserError(() => decodeImage(new TextEncoder().encode('GIF89a......'), { name: 'a.gif' }), 'a.gif', 'GIF images are not supported');
    expectUserError(() => decodeImage(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 '), { name: 'a.webp' }), 'WebP');
  });

  it('empty file, missing file, directory', () => {
    const f = join(tmp, 'empty.png');
    writeFileSync(f, new Uint8Array(0));
    expectUserError(() => readImageFile(f), f, 'empty');
    expectUserError(() => readImageFile(join(tmp, 'nope.png')), 'cannot read', 'ENOENT');
    expectUserError(() => readImageFile(tmp), 'is a directory');
  });

  it('zero-dimension PNG and JPEG', () => {
    expectUserError(() => decodeImage(pngHeaderOnly(0, 10), { name: 'z.png' }), 'z.png', 'zero dimension', '0×10');
    expectUserError(() => decodeImage(pngHeaderOnly(10, 0), { name: 'z.png' }), 'zero dimension');
    expectUserError(() => decodeImage(jpegHeaderOnly(0, 10), { name: 'z.jpg' }), 'z.jpg', 'zero dimension');
  });

  it('a PNG claiming 50000×50000 is refused from its header, fast', () => {
    const bomb = pngHeaderOnly(50000, 50000);
    expect(bomb.length).toBe(8 + 25 + 12);
    const t0 = performance.now();
    expectUserError(() => decodeImage(bomb, { name: 'bomb.png' }), 'bomb.png', '50000×50000', '2500.0 megapixels', 'limit of 100.0 MP');
    expect(performance.now() - t0).toBeLessThan(50);
    // Just above the budget is refused too; the budget is an option.
    expectUserError(() => readImageHeader(pngHeaderOnly(10001, 10000)), 'over the limit');
    expect(readImageHeader(pngHeaderOnly(10000, 10000))).toEqual({ format: 'png', width: 10000, height: 10000 });
    expectUserError(() => readImageFile(join(FIX_IMAGES, '000000039769.png'), { maxPixels: 100_000 }), '640×480', 'limit of 0.1 MP');
  });

  it('a JPEG whose frame header claims 60000×60000 is refused before decoding', () => {
    const t0 = performance.now();
    expectUserError(() => decodeImage(jpegHeaderOnly(60000, 60000), { name: 'bomb.jpg' }), 'bomb.jpg', '60000×60000', 'megapixels');
    expect(performance.now() - t0).toBeLessThan(50);
    expect(readImageHeader(jpg)).toEqual({ format: 'jpeg', width: 640, height: 423 });
  });

  it('a header-only PNG (no pixel data) within budget is a decode error', () => {
    expectUserError(() => decodeImage(pngHeaderOnly(64, 64), { name: 'h.png' }), 'h.png', 'truncated, corrupt');
  });

  it('invalid IHDR fields', () => {
    expectUserError(() => decodeImage(pngHeaderOnly(4, 4, 3, 2)), 'bit depth 3');
    expectUserError(() => decodeImage(png.subarray(0, 20)), 'truncated PNG');
  });

  it('truncated PNG', () => {
    for (const frac of [0.1, 0.5, 0.99]) {
      const f = join(tmp, `trunc${frac}.png`);
      writeFileSync(f, png.subarray(0, Math.floor(png.length * frac)));
      expectUserError(() => readImageFile(f), f, 'cannot decode PNG', 'truncated, corrupt');
    }
  });

  it('corrupt PNG data (bad CRC)', () => {
    const bad = new Uint8Array(png);
    bad[bad.length >> 1] ^= 0x55;
    expectUserError(() => decodeImage(bad, { name: 'c.png' }), 'c.png', 'cannot decode PNG');
  });

  it('truncated JPEG', () => {
    for (const frac of [0.001, 0.3, 0.6, 0.999]) {
      const f = join(tmp, `trunc${frac}.jpg`);
      writeFileSync(f, jpg.subarray(0, Math.floor(jpg.length * frac)));
      expectUserError(() => readImageFile(f), f, /truncated|corrupt/);
    }
  });

  it('unsupported JPEG kinds', () => {
    const lossless = jpegHeaderOnly(8, 8);
    lossless[21] = 0xc3; // SOF3
    expectUserError(() => decodeImage(lossless, { name: 'l.jpg' }), 'lossless JPEG');
  });
});
