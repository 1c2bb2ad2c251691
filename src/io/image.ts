/**
 * Image decoding: PNG (fast-png) and JPEG (jpeg-js) bytes → 8-bit RGB, with the pixel
 * conversions of Pillow's `Image.open(f).convert('RGB')` (what HF's image processors use
 * with `do_convert_rgb`). Browser-safe: bytes in, pixels out; `src/io/load-node.ts` reads
 * files under Node.
 *
 * Checks before any decoding (so a hostile header costs nothing): the bytes are non-empty
 * and start with a PNG or JPEG signature; the PNG IHDR / JPEG SOF header is present and
 * parses; width and height are > 0; width × height ≤ `maxPixels` (default 100 MP).
 * Decoder failures (truncated or corrupt data, bad CRC) become UserErrors naming the file.
 *
 * Conversions to RGB (checked against Pillow 9.4 in test/io/image.test.ts):
 * | PNG colour type, depth   | Pillow mode | → RGB                                          |
 * | gray 1/2/4 bit           | 1 / L       | v · 255 / (2^depth − 1), replicated            |
 * | gray 8 bit               | L           | v replicated                                   |
 * | gray 16 bit              | I           | min(v, 255) replicated (Pillow clips, it does  |
 * |                          |             | not rescale: most 16-bit gray images turn      |
 * |                          |             | white — matched on purpose, HF sees the same)  |
 * | gray+alpha 8 / 16 bit    | LA / RGBA   | gray (16 bit: high byte), alpha dropped        |
 * | RGB 8 / 16 bit           | RGB         | as is (16 bit: high byte)                      |
 * | RGBA 8 / 16 bit          | RGBA        | alpha dropped, no compositing (16: high byte)  |
 * | palette 1/2/4/8 bit      | P           | palette colour; tRNS ignored; an index past    |
 * |                          |             | the palette gives (i, i, i) like Pillow's ramp |
 * `tRNS` transparency never changes the colour. Transparency is kept apart, as `alpha`,
 * the alpha plane of Pillow's `convert('RGBA')`, for ChameleonImageProcessor (which blends
 * onto white, src/io/image-processor.ts): the alpha channel (16 bit: high byte), a palette's
 * tRNS entries, and an 8-bit gray/RGB tRNS colour key (alpha 0 where the pixel equals it);
 * a key in a 16-bit or sub-byte image is ignored. Gamma, ICC profiles and EXIF orientation
 * are ignored, as HF's processors ignore them (`transformers.image_utils.load_image` does
 * apply EXIF orientation; open the file yourself in Python to compare).
 *
 * JPEG: entropy decoding and IDCT by jpeg-js; the rest as libjpeg-turbo does it under
 * Pillow: jpeg-js hands back the raw components (`colorTransform: false`), subsampled
 * chroma is upsampled with libjpeg's "fancy" triangle filters (h2v1, h1v2, h2v2; jpeg-js
 * alone would replicate samples, up to ~45 levels off at colour edges), and YCbCr → RGB
 * uses libjpeg's 16-bit fixed-point tables, with libjpeg's rule for the colour space
 * (JFIF / Adobe transform / component ids). What remains is jpeg-js's IDCT, which rounds
 * differently from libjpeg's ISLOW IDCT: ±1 on ~7% of gray samples, ≤ 3 levels (mean
 * ~0.15) per RGB channel, ≤ 4 levels (mean ~0.2) after the CLIP resize (measured in
 * test/io/image.test.ts against Pillow 9.4 + libjpeg-turbo 2.1). CMYK/YCCK (Adobe) JPEGs
 * use jpeg-js's conversion (≤ 1 level from Pillow on a test image). EXIF orientation is
 * ignored (see above).
 */
import { decode as decodePngRaw } from 'fast-png';
import jpeg from 'jpeg-js';
import { UserError } from '../errors.ts';

/** An 8-bit RGB image, row-major, channels last: `data[(y * width + x) * 3 + c]`. */
export interface RgbImage {
  width: number;
  height: number;
  /** [height, width, 3] RGB. */
  data: Uint8Array;
  /** [height, width] alpha as Pillow's convert('RGBA') gives it; only when some pixel is below 255. */
  alpha?: Uint8Array;
}

/** Default pixel budget: 100 megapixels. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

export interface DecodeOptions {
  /** File name or URL for error messages. */
  name?: string;
  /** Refuse images with more pixels than this (checked on the header, before decoding). */
  maxPixels?: number;
}

export type ImageFormat = 'png' | 'jpeg';

/** What `readImageHeader` finds without decoding. */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(b: Uint8Array, sig: readonly number[]): boolean {
  if (b.length < sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[i] !== sig[i]) return false;
  return true;
}

/** Names formats we recognise but do not decode, for a helpful message. */
function otherFormat(b: Uint8Array): string | null {
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  if (ascii(0, 4) === 'GIF8') return 'GIF';
  if (ascii(0, 2) === 'BM') return 'BMP';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') return 'WebP';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'TIFF';
  if (ascii(4, 8) === 'ftypavif' || ascii(4, 8) === 'ftypheic' || ascii(4, 8) === 'ftypmif1') return 'AVIF/HEIF';
  if (ascii(0, 5) === '<?xml' || ascii(0, 4) === '<svg') return 'SVG';
  return null;
}

/** 'png' or 'jpeg' from the leading bytes, or null. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (startsWith(bytes, PNG_SIG)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  return null;
}

function checkDims(name: string, kind: string, width: number, height: number, maxPixels: number): void {
  if (width === 0 || height === 0) {
    throw new UserError(`${name}: ${kind} has a zero dimension (${width}×${height}); not a usable image`);
  }
  if (width * height > maxPixels) {
    throw new UserError(
      `${name}: ${kind} claims ${width}×${height} = ${((width * height) / 1e6).toFixed(1)} megapixels, over the limit of ${(maxPixels / 1e6).toFixed(1)} MP; refusing to decode it (shrink the image first)`,
    );
  }
}

const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

function readPngHeader(b: Uint8Array, name: string, maxPixels: number): ImageHeader & { depth: number; colorType: number } {
  // Signature (8) + IHDR chunk: length (4) = 13, "IHDR", 13 data bytes, CRC (4).
  if (b.length < 33) throw new UserError(`${name}: truncated PNG (${b.length} bytes, no complete IHDR header)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const len = dv.getUint32(8);
  const type = String.fromCharCode(...b.subarray(12, 16));
  if (type !== 'IHDR' || len !== 13) throw new UserError(`${name}: corrupt PNG (first chunk is not a 13-byte IHDR)`);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const depth = b[24];
  const colorType = b[25];
  if (width > 0x7fffffff || height > 0x7fffffff) throw new UserError(`${name}: corrupt PNG (IHDR size ${width}×${height})`);
  checkDims(name, 'PNG header', width, height, maxPixels);
  if (!(colorType in PNG_DEPTHS) || !PNG_DEPTHS[colorType].includes(depth)) {
    throw new UserError(`${name}: corrupt PNG (colour type ${colorType} with bit depth ${depth} is not valid)`);
  }
  if (b[26] !== 0 || b[27] !== 0 || b[28] > 1) throw new UserError(`${name}: corrupt PNG (unknown compression, filter or interlace method in IHDR)`);
  return { format: 'png', width, height, depth, colorType };
}

/** What the JPEG markers say, as libjpeg reads them (enough to pick upsampling and colours). */
interface JpegInfo extends ImageHeader {
  /** Frame components in SOF order: id and sampling factors. */
  components: { id: number; h: number; v: number }[];
  /** An APP0 "JFIF" marker was seen (implies YCbCr for 3 components). */
  jfif: boolean;
  /** The Adobe APP14 marker's transform flag, or null when there is none. */
  adobeTransform: number | null;
}

function readJpegHeader(b: Uint8Array, name: string, maxPixels: number): JpegInfo {
  let o = 2;
  let info: JpegInfo | null = null;
  let jfif = false;
  let adobeTransform: number | null = null;
  const truncated = () => new UserError(`${name}: truncated JPEG (the file ends ${info ? 'before the image data' : 'before the frame header'})`);
  const ascii = (from: number, n: number) => String.fromCharCode(...b.subarray(from, from + n));
  // Walk the marker segments up to the first scan (SOS); APPn markers may follow SOF.
  for (;;) {
    // The next marker: 0xFF, optional fill 0xFF bytes, then the marker code.
    if (o >= b.length) throw truncated();
    if (b[o] !== 0xff) throw new UserError(`${name}: corrupt JPEG (expected a marker at byte ${o})`);
    while (o < b.length && b[o] === 0xff) o++;
    if (o >= b.length) throw truncated();
    const m = b[o++];
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // standalone markers
    if (m === 0xd9 || m === 0xda) {
      if (!info) throw new UserError(`${name}: corrupt JPEG (no frame header before ${m === 0xd9 ? 'end of image' : 'scan data'})`);
      if (m === 0xd9) throw new UserError(`${name}: corrupt JPEG (no image data before the end marker)`);
      return { ...info, jfif, adobeTransform };
    }
    if (o + 2 > b.length) throw truncated();
    const segLen = (b[o] << 8) | b[o + 1];
    if (segLen < 2) throw new UserError(`${name}: corrupt JPEG (segment length ${segLen} at byte ${o})`);
    if (m === 0xe0 && segLen - 2 >= 14 && ascii(o + 2, 5) === 'JFIF\0') jfif = true;
    if (m === 0xee && segLen - 2 >= 12 && o + 14 <= b.length && ascii(o + 2, 5) === 'Adobe') adobeTransform = b[o + 13];
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof && !info) {
      if (o + 8 > b.length) throw truncated();
      const height = (b[o + 3] << 8) | b[o + 4];
      const width = (b[o + 5] << 8) | b[o + 6];
      if (m !== 0xc0 && m !== 0xc1 && m !== 0xc2) {
        const kind = m === 0xc3 || m === 0xc7 || m === 0xcb || m === 0xcf ? 'lossless' : 'arithmetic-coded or hierarchical';
        throw new UserError(`${name}: ${kind} JPEG (SOF${m - 0xc0}) is not supported; re-save it as a baseline JPEG or PNG`);
      }
      if (b[o + 2] !== 8) throw new UserError(`${name}: ${b[o + 2]}-bit JPEG is not supported (8-bit only)`);
      if (height === 0 && width !== 0) {
        throw new UserError(`${name}: JPEG whose height is set by a later DNL marker is not supported; re-save it`);
      }
      checkDims(name, 'JPEG frame header', width, height, maxPixels);
      const nc = b[o + 7];
      if (o + 8 + 3 * nc > b.length) throw truncated();
      if (nc !== 1 && nc !== 3 && nc !== 4) throw new UserError(`${name}: JPEG with ${nc} colour components is not supported`);
      const components = [];
      for (let i = 0; i < nc; i++) {
        const f = b[o + 9 + 3 * i];
        const h = f >> 4;
        const v = f & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) throw new UserError(`${name}: corrupt JPEG (sampling factors ${h}×${v})`);
        components.push({ id: b[o + 8 + 3 * i], h, v });
      }
      info = { format: 'jpeg', width, height, components, jfif: false, adobeTransform: null };
    }
    o += segLen;
  }
}

/**
 * Format and size from the header alone (no pixel decoding), after the checks listed at
 * the top of this file. Throws UserError for anything that is not a usable PNG or JPEG.
 */
export function readImageHeader(bytes: Uint8Array, opts: DecodeOptions = {}): ImageHeader {
  const name = opts.name ?? 'image';
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) throw new UserError(`${name}: the file is empty (0 bytes), not an image`);
  const fmt = sniffImageFormat(bytes);
  if (fmt === 'png') {
    const { format, width, height } = readPngHeader(bytes, name, maxPixels);
    return { format, width, height };
  }
  if (fmt === 'jpeg') {
    const { format, width, height } = readJpegHeader(bytes, name, maxPixels);
    return { format, width, height };
  }
  const other = otherFormat(bytes);
  if (other) throw new UserError(`${name}: ${other} images are not supported; convert it to PNG or JPEG`);
  throw new UserError(`${name}: not a PNG or JPEG image (unrecognised leading bytes)`);
}

/** Decode PNG or JPEG bytes to 8-bit RGB, converting as Pillow's `convert('RGB')`. */
export function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): RgbImage {
  const name = opts.name ?? 'image';
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const header = readImageHeader(bytes, { name, maxPixels });
  return header.format === 'png' ? decodePng(bytes, name, readPngHeader(bytes, name, maxPixels)) : decodeJpeg(bytes, name, readJpegHeader(bytes, name, maxPixels));
}

function decoderError(name: string, kind: string, e: unknown): UserError {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return new UserError(`${name}: cannot decode ${kind}: the file is truncated, corrupt or of an unsupported kind (decoder: ${msg}${cause})`);
}

function decodePng(bytes: Uint8Array, name: string, header: ImageHeader & { colorType: number }): RgbImage {
  let png;
  try {
    png = decodePngRaw(bytes, { checkCrc: true });
  } catch (e) {
    throw decoderError(name, 'PNG', e);
  }
  const { width, height, depth, channels } = png;
  if (width !== header.width || height !== header.height) throw new UserError(`${name}: corrupt PNG (size changed while decoding)`);
  const n = width * height;
  // Samples per row as stored: sub-byte depths stay packed, rows padded to a byte.
  const rowSamples = width * channels;
  const packed = depth < 8;
  const rowBytes = packed ? Math.ceil((rowSamples * depth) / 8) : rowSamples;
  const expect = packed ? rowBytes * height : n * channels;
  if (png.data.length < expect) {
    throw new UserError(`${name}: truncated PNG (image data holds ${png.data.length} of ${expect} samples)`);
  }
  const src = png.data;
  const sample = (y: number, i: number): number => {
    if (!packed) return src[y * rowSamples + i];
    const bit = i * depth;
    const byte = src[y * rowBytes + (bit >> 3)];
    return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const out = new Uint8Array(n * 3);
  const alpha = new Uint8Array(n).fill(255);
  const done = (): RgbImage => (alpha.some((a) => a < 255) ? { width, height, data: out, alpha } : { width, height, data: out });
  const key = png.transparency && png.transparency.length && depth === 8 && header.colorType !== 3 ? png.transparency : null;
  if (header.colorType === 3) {
    const pal = png.palette;
    if (!pal) throw new UserError(`${name}: corrupt PNG (palette image without a PLTE chunk)`);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const idx = sample(y, x);
        const o = (y * width + x) * 3;
        const c = pal[idx];
        if (c) {
          out[o] = c[0];
          out[o + 1] = c[1];
          out[o + 2] = c[2];
          alpha[y * width + x] = c[3] ?? 255; // fast-png appends tRNS alpha to the entries
        } else out[o] = out[o + 1] = out[o + 2] = idx; // Pillow's default palette ramp
      }
    }
    return done();
  }
  // To 8 bits the way Pillow's PNG unpackers do.
  const to8 =
    depth === 16
      ? channels === 1
        ? (v: number) => (v > 255 ? 255 : v) // mode I, clipped by convert('RGB')
        : (v: number) => v >> 8 // "RGB;16B" etc. keep the high byte
      : depth === 8
        ? (v: number) => v
        : (v: number) => (v * 255) / ((1 << depth) - 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const s = x * channels;
      if (channels <= 2) {
        out[o] = out[o + 1] = out[o + 2] = to8(sample(y, s));
      } else {
        out[o] = to8(sample(y, s));
        out[o + 1] = to8(sample(y, s + 1));
        out[o + 2] = to8(sample(y, s + 2));
      }
      // gray+alpha and RGBA: the last channel; the alpha channel's 16 bits keep the high byte
      if (channels === 2 || channels === 4) alpha[y * width + x] = depth === 16 ? sample(y, s + channels - 1) >> 8 : sample(y, s + channels - 1);
      else if (key && (channels === 1 ? sample(y, s) === key[0] : sample(y, s) === key[0] && sample(y, s + 1) === key[1] && sample(y, s + 2) === key[2])) alpha[y * width + x] = 0;
    }
  }
  return done();
}

function decodeJpeg(bytes: Uint8Array, name: string, info: JpegInfo): RgbImage {
  const { width: W, height: H, components } = info;
  const pixels = W * H;
  let img;
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      // Raw components for 3-component images (we convert below, as libjpeg does).
      colorTransform: false,
      tolerantDecoding: false,
      maxResolutionInMP: Math.ceil(pixels / 1e6) + 1,
      // jpeg-js keeps Int32 coefficient blocks (4 B per sample per component) plus
      // component lines and the output: ~20 B per pixel covers 4 components.
      maxMemoryUsageInMB: Math.ceil((pixels * 20) / 2 ** 20) + 64,
    });
  } catch (e) {
    throw decoderError(name, 'JPEG', e);
  }
  if (img.width !== W || img.height !== H || img.data.length !== pixels * 3) {
    throw new UserError(`${name}: corrupt JPEG (decoded ${img.width}×${img.height}, header says ${W}×${H})`);
  }
  // 1 component: gray, replicated by jpeg-js. 4 components (CMYK / YCCK): jpeg-js's own
  // conversion, which only approximates Pillow's.
  if (components.length !== 3) return { width: W, height: H, data: img.data };
  return libjpegColour(img.data, info, name);
}

// ---------------------------------------------------------------------------------------
// libjpeg-turbo's upsampling (jdsample.c, "fancy" triangle filters, as Pillow decodes) and
// YCbCr → RGB (jdcolor.c, 16-bit fixed point), applied to jpeg-js's raw components.
// jpeg-js (colorTransform: false) returns each component at full size by replicating
// subsampled samples, so the subsampled plane is recovered exactly by taking every h-th
// column and v-th row.

/** libjpeg h2v1_fancy_upsample: 3/4 nearer + 1/4 further sample, per row. */
function upsampleH2(p: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * 2 * h);
  for (let y = 0; y < h; y++) {
    const i = y * w;
    const o = y * w * 2;
    out[o] = p[i];
    out[o + 1] = (p[i] * 3 + p[i + 1] + 2) >> 2;
    for (let x = 1; x < w - 1; x++) {
      const c = p[i + x] * 3;
      out[o + 2 * x] = (c + p[i + x - 1] + 1) >> 2;
      out[o + 2 * x + 1] = (c + p[i + x + 1] + 2) >> 2;
    }
    out[o + 2 * w - 2] = (p[i + w - 1] * 3 + p[i + w - 2] + 1) >> 2;
    out[o + 2 * w - 1] = p[i + w - 1];
  }
  return out;
}

/** libjpeg h1v2_fancy_upsample; rows past the edges repeat the edge row. */
function upsampleV2(p: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 2);
  for (let y = 0; y < h; y++) {
    const above = Math.max(y - 1, 0) * w;
    const below = Math.min(y + 1, h - 1) * w;
    for (let x = 0; x < w; x++) {
      const c = p[y * w + x] * 3;
      out[2 * y * w + x] = (c + p[above + x] + 1) >> 2;
      out[(2 * y + 1) * w + x] = (c + p[below + x] + 2) >> 2;
    }
  }
  return out;
}

/** libjpeg h2v2_fancy_upsample (9/16, 3/16, 3/16, 1/16), edges repeated. */
function upsampleH2V2(p: Uint8Array, w: number, h: number): Uint8Array {
  const W2 = w * 2;
  const out = new Uint8Array(W2 * h * 2);
  const cs = new Int32Array(w);
  for (let y = 0; y < h; y++) {
    for (let v = 0; v < 2; v++) {
      const r0 = y * w;
      const r1 = (v === 0 ? Math.max(y - 1, 0) : Math.min(y + 1, h - 1)) * w;
      for (let x = 0; x < w; x++) cs[x] = p[r0 + x] * 3 + p[r1 + x];
      const o = (2 * y + v) * W2;
      out[o] = (cs[0] * 4 + 8) >> 4;
      out[o + 1] = (cs[0] * 3 + cs[1] + 7) >> 4;
      for (let x = 1; x < w - 1; x++) {
        out[o + 2 * x] = (cs[x] * 3 + cs[x - 1] + 8) >> 4;
        out[o + 2 * x + 1] = (cs[x] * 3 + cs[x + 1] + 7) >> 4;
      }
      out[o + W2 - 2] = (cs[w - 1] * 3 + cs[w - 2] + 8) >> 4;
      out[o + W2 - 1] = (cs[w - 1] * 4 + 7) >> 4;
    }
  }
  return out;
}

/** One component at full size, upsampled the way libjpeg-turbo chooses (jinit_upsampler). */
function upsampleComponent(rep: Uint8Array, c: number, info: JpegInfo, name: string): Uint8Array {
  const { width: W, height: H, components } = info;
  const maxH = Math.max(...components.map((k) => k.h));
  const maxV = Math.max(...components.map((k) => k.v));
  const { h, v } = components[c];
  const full = new Uint8Array(W * H);
  for (let i = 0; i < W * H; i++) full[i] = rep[i * 3 + c];
  if (h === maxH && v === maxV) return full;
  if (maxH % h !== 0 || maxV % v !== 0) {
    throw new UserError(`${name}: JPEG with fractional chroma subsampling (${h}×${v} of ${maxH}×${maxV}) is not supported (libjpeg refuses it too)`);
  }
  const fh = maxH / h;
  const fv = maxV / v;
  // Subsampled plane: ceil(W·h/maxH) × ceil(H·v/maxV) samples.
  const dw = Math.ceil(W / fh);
  const dh = Math.ceil(H / fv);
  let up: Uint8Array;
  let uw: number;
  if (fh === 2 && fv === 1 && dw > 2) [up, uw] = [upsampleH2(subsample(full, W, dw, dh, 2, 1), dw, dh), dw * 2];
  else if (fh === 1 && fv === 2) [up, uw] = [upsampleV2(subsample(full, W, dw, dh, 1, 2), dw, dh), dw];
  else if (fh === 2 && fv === 2 && dw > 2) [up, uw] = [upsampleH2V2(subsample(full, W, dw, dh, 2, 2), dw, dh), dw * 2];
  else return full; // libjpeg replicates (h2v1/h2v2 plain, int_upsample), as jpeg-js does
  for (let y = 0; y < H; y++) full.set(up.subarray(y * uw, y * uw + W), y * W);
  return full;
}

function subsample(full: Uint8Array, W: number, dw: number, dh: number, fh: number, fv: number): Uint8Array {
  const p = new Uint8Array(dw * dh);
  for (let y = 0; y < dh; y++) for (let x = 0; x < dw; x++) p[y * dw + x] = full[y * fv * W + x * fh];
  return p;
}

// jdcolor.c build_ycc_rgb_table: SCALEBITS 16, FIX(x) = round(x · 2^16).
const FIX = (x: number) => Math.floor(x * 65536 + 0.5);
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Float64Array(256);
const CB_G = new Float64Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = Math.floor((FIX(1.402) * x + 32768) / 65536);
  CB_B[i] = Math.floor((FIX(1.772) * x + 32768) / 65536);
  CR_G[i] = -FIX(0.71414) * x;
  CB_G[i] = -FIX(0.34414) * x + 32768;
}
const clampByte = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * libjpeg's colour space for 3 components (jdapimin.c default_decompress_parms): JFIF →
 * YCbCr; else Adobe transform 0 → RGB, other → YCbCr; else component ids R,G,B → RGB;
 * else YCbCr.
 */
function libjpegColour(rep: Uint8Array, info: JpegInfo, name: string): RgbImage {
  const { width: W, height: H } = info;
  const ids = info.components.map((c) => c.id);
  const rgb = !info.jfif && (info.adobeTransform !== null ? info.adobeTransform === 0 : ids[0] === 82 && ids[1] === 71 && ids[2] === 66);
  const [c0, c1, c2] = [0, 1, 2].map((c) => upsampleComponent(rep, c, info, name));
  const out = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) {
    if (rgb) {
      out[i * 3] = c0[i];
      out[i * 3 + 1] = c1[i];
      out[i * 3 + 2] = c2[i];
    } else {
      const y = c0[i];
      const cb = c1[i];
      const cr = c2[i];
      out[i * 3] = clampByte(y + CR_R[cr]);
      out[i * 3 + 1] = clampByte(y + Math.floor((CB_G[cb] + CR_G[cr]) / 65536));
      out[i * 3 + 2] = clampByte(y + CB_B[cb]);
    }
  }
  return { width: W, height: H, data: out };
}
