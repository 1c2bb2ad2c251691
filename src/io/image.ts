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
 * `tRNS` transparency never changes the colour. Gamma, ICC profiles and EXIF orientation
 * are ignored, as HF's processors ignore them (`transformers.image_utils.load_image` does
 * apply EXIF orientation; open the file yourself in Python to compare).
 *
 * JPEG: decoded by jpeg-js (baseline and progressive; grayscale replicated; Adobe CMYK
 * converted by jpeg-js's own formula). jpeg-js's IDCT and colour conversion differ from
 * libjpeg-turbo's (Pillow), and it upsamples subsampled chroma by pixel replication where
 * libjpeg uses "fancy" triangular upsampling, so pixels differ by a few levels; the test
 * measures and bounds the difference.
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

function readJpegHeader(b: Uint8Array, name: string, maxPixels: number): ImageHeader {
  let o = 2;
  const truncated = () => new UserError(`${name}: truncated JPEG (the file ends before the frame header)`);
  for (;;) {
    // Find the next marker: 0xFF, optional fill 0xFF bytes, then the marker code.
    if (o >= b.length) throw truncated();
    if (b[o] !== 0xff) throw new UserError(`${name}: corrupt JPEG (expected a marker at byte ${o})`);
    while (o < b.length && b[o] === 0xff) o++;
    if (o >= b.length) throw truncated();
    const m = b[o++];
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // standalone markers
    if (m === 0xd9 || m === 0xda) throw new UserError(`${name}: corrupt JPEG (no frame header before ${m === 0xd9 ? 'end of image' : 'scan data'})`);
    if (o + 2 > b.length) throw truncated();
    const segLen = (b[o] << 8) | b[o + 1];
    if (segLen < 2) throw new UserError(`${name}: corrupt JPEG (segment length ${segLen} at byte ${o})`);
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
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
      return { format: 'jpeg', width, height };
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
  if (fmt === 'jpeg') return readJpegHeader(bytes, name, maxPixels);
  const other = otherFormat(bytes);
  if (other) throw new UserError(`${name}: ${other} images are not supported; convert it to PNG or JPEG`);
  throw new UserError(`${name}: not a PNG or JPEG image (unrecognised leading bytes)`);
}

/** Decode PNG or JPEG bytes to 8-bit RGB, converting as Pillow's `convert('RGB')`. */
export function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): RgbImage {
  const name = opts.name ?? 'image';
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const header = readImageHeader(bytes, { name, maxPixels });
  return header.format === 'png' ? decodePng(bytes, name, readPngHeader(bytes, name, maxPixels)) : decodeJpeg(bytes, name, header);
}

function decoderError(name: string, kind: string, e: unknown): UserError {
  const msg = e instanceof Error ? e.message : String(e);
  return new UserError(`${name}: cannot decode ${kind}: the file is truncated or corrupt (${msg})`);
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
        } else out[o] = out[o + 1] = out[o + 2] = idx; // Pillow's default palette ramp
      }
    }
    return { width, height, data: out };
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
    }
  }
  return { width, height, data: out };
}

function decodeJpeg(bytes: Uint8Array, name: string, header: ImageHeader): RgbImage {
  const pixels = header.width * header.height;
  let img;
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: Math.ceil(pixels / 1e6) + 1,
      // jpeg-js keeps Int32 coefficient blocks (4 B per sample per component) plus
      // component lines and the output: ~20 B per pixel covers 4 components.
      maxMemoryUsageInMB: Math.ceil((pixels * 20) / 2 ** 20) + 64,
    });
  } catch (e) {
    throw decoderError(name, 'JPEG', e);
  }
  if (img.width !== header.width || img.height !== header.height || img.data.length !== pixels * 3) {
    throw new UserError(`${name}: corrupt JPEG (decoded ${img.width}×${img.height}, header says ${header.width}×${header.height})`);
  }
  return { width: img.width, height: img.height, data: img.data };
}
