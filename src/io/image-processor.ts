/**
 * HF image processors, from a checkpoint's `preprocessor_config.json` (or the
 * `image_processor` object transformers 5 nests in `processor_config.json`):
 * - `CLIPImageProcessor` (LLaVA-1.5: shortest edge → 336, bicubic, centre crop 336×336),
 * - `BlipImageProcessor` (InstructBLIP: resize to exactly 224×224, bicubic, no crop),
 * - `ChameleonImageProcessor` (CLIP's steps; defaults shortest edge 512, LANCZOS, crop
 *   512, rescale × 0.0078, mean = std = 1: pixels v·0.0078 − 1),
 * both followed by rescale (× 1/255) and normalise with `image_mean` / `image_std`, giving
 * `pixel_values` as Float32 [3, H, W]; and the settings of
 * - `LlavaNextImageProcessor` (CLIP's plus `image_grid_pinpoints`; its base view + tiles are
 *   src/io/image-processor-llava-next.ts, built from the steps here).
 *
 * Semantics follow HF's slow (PIL) processors, `image_processing_clip.py`,
 * `image_processing_blip.py` and `image_transforms.py`:
 * 1. `do_convert_rgb`: done by the decoder (src/io/image.ts gives RGB always), which drops
 *    alpha as Pillow's convert('RGB') does; ChameleonImageProcessor instead blends a
 *    transparent image onto white (`blendOnWhite`).
 * 2. resize: `shortest_edge` s keeps the aspect ratio, short side → s, long side →
 *    `int(s * long / short)` (truncated; `get_resize_output_image_size`); `{height, width}`
 *    resizes to exactly that. Resampling is Pillow's `Image.resize` (`reducing_gap=None`),
 *    reimplemented here bit-exactly for 8-bit images: separable convolution, horizontal pass
 *    first into an 8-bit intermediate, then vertical; filter support scaled by the downscale
 *    factor; coefficients normalised to sum 1 and rounded to 22-bit fixed point
 *    (`PRECISION_BITS = 32 - 8 - 2` in Pillow's Resample.c); results rounded and clipped to
 *    0..255. `resample` 3 = BICUBIC (Keys cubic, a = −0.5), also 1 LANCZOS, 2 BILINEAR,
 *    4 BOX, 5 HAMMING; 0 NEAREST is refused.
 * 3. `do_center_crop`: `top = (H − h) // 2`, `left = (W − w) // 2` (floor); an image smaller
 *    than the crop is zero-padded first, `ceil` of half the difference on the top/left.
 * 4. `do_rescale`: `float32(float64(v) * rescale_factor)`.
 * 5. `do_normalize`: `(x − float32(mean)) / float32(std)` in float32.
 * Every step rounds as numpy/HF do, so the result equals HF's bit for bit when the decoded
 * pixels are equal (test/io/image.test.ts checks against Pillow + numpy).
 *
 * `padToSquare` (off by default): the original LLaVA-1.5 repo's `expand2square`, which HF's
 * processor does not do: pad the shorter side symmetrically (`(long − short) // 2` before)
 * with the mean colour `int(mean * 255)` = (122, 116, 104) for CLIP, then run the processor
 * (the crop becomes a no-op). HF's llava-hf checkpoints crop instead.
 *
 * HF's "fast" processors (`use_fast=True`, torchvision) resize differently (antialiased
 * tensor interpolation); phaselens always follows the slow PIL path.
 */
import { UserError } from '../errors.ts';
import type { RgbImage } from './image.ts';
import type { AnyresLayout } from './image-processor-llava-next.ts';

/** OpenAI CLIP normalisation constants (HF `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`). */
export const OPENAI_CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** PIL resampling codes as stored in `preprocessor_config.json` `resample`. */
export const PIL_RESAMPLE = { NEAREST: 0, LANCZOS: 1, BILINEAR: 2, BICUBIC: 3, BOX: 4, HAMMING: 5 } as const;

export type ResizeSize = { shortestEdge: number } | { height: number; width: number };

/** A parsed `preprocessor_config.json`, defaults filled in as the HF class does. */
export interface ImageProcessorConfig {
  /** Where the settings were read (e.g. `DIR/processor_config.json` "image_processor"), for messages. */
  source?: string;
  /** `CLIPImageProcessor`, `BlipImageProcessor` or `LlavaNextImageProcessor`. */
  processorType: 'CLIPImageProcessor' | 'BlipImageProcessor' | 'LlavaNextImageProcessor' | 'ChameleonImageProcessor';
  doResize: boolean;
  size: ResizeSize;
  /** PIL resampling code (3 = BICUBIC). */
  resample: number;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** LlavaNextImageProcessor's `image_grid_pinpoints`, [height, width] each; null for the others. */
  imageGridPinpoints: [number, number][] | null;
}

/** `pixel_values` for one image. */
export interface PixelValues {
  /**
   * Float32, channels first: [3, height, width] for one view; [views, 3, height, width] for
   * LLaVA-NeXT's base view followed by its tiles (then `anyres` says how they were cut).
   */
  data: Float32Array;
  shape: [3, number, number] | [number, 3, number, number];
  anyres?: AnyresLayout;
}

export interface PreprocessOptions {
  /** LLaVA repo's expand2square before the processor (see the file header). Default false. */
  padToSquare?: boolean;
  /** [x0, y0, x1, y1) in pixels of the original image: the `object` token group (--object-box). */
  objectBox?: [number, number, number, number];
}

type Json = Record<string, unknown>;

const SUPPORTED = 'CLIPImageProcessor (LLaVA-1.5), LlavaNextImageProcessor (LLaVA-NeXT), BlipImageProcessor (InstructBLIP) and ChameleonImageProcessor (Chameleon)';

/** LlavaNextImageProcessor's default `image_grid_pinpoints` ([height, width]). */
const DEFAULT_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

/** `image_grid_pinpoints`: a non-empty list of [height, width] positive integers. */
function pinpoints(v: unknown, source: string): [number, number][] {
  if (!Array.isArray(v) || v.length === 0) throw new UserError(`${source}: "image_grid_pinpoints" must be a non-empty list of [height, width], got ${JSON.stringify(v)}`);
  return v.map((p, i) => {
    if (!Array.isArray(p) || p.length !== 2) throw new UserError(`${source}: "image_grid_pinpoints"[${i}] must be [height, width], got ${JSON.stringify(p)}`);
    return [positiveInt(p[0], `"image_grid_pinpoints"[${i}][0]`, source), positiveInt(p[1], `"image_grid_pinpoints"[${i}][1]`, source)];
  });
}

function num(cfg: Json, key: string, dflt: number, source: string, integer = false): number {
  const v = cfg[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new UserError(`${source}: "${key}" must be a${integer ? 'n integer' : ' number'}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(cfg: Json, key: string, dflt: boolean, source: string): boolean {
  const v = cfg[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new UserError(`${source}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function triple(cfg: Json, key: string, dflt: readonly number[], source: string): [number, number, number] {
  const v = cfg[key] ?? dflt;
  const arr = typeof v === 'number' ? [v, v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 3 || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new UserError(`${source}: "${key}" must be a number or a list of 3 numbers, got ${JSON.stringify(v)}`);
  }
  return [arr[0], arr[1], arr[2]];
}

function positiveInt(v: unknown, what: string, source: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new UserError(`${source}: ${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** HF `get_size_dict`: an int is a square (`defaultToSquare`) or a shortest edge; lists are (h, w). */
function sizeDict(v: unknown, defaultToSquare: boolean, key: string, source: string): ResizeSize {
  if (typeof v === 'number') {
    const n = positiveInt(v, `"${key}"`, source);
    return defaultToSquare ? { height: n, width: n } : { shortestEdge: n };
  }
  if (Array.isArray(v) && v.length === 2) {
    return { height: positiveInt(v[0], `"${key}"[0]`, source), width: positiveInt(v[1], `"${key}"[1]`, source) };
  }
  if (v && typeof v === 'object') {
    const o = v as Json;
    if ('height' in o && 'width' in o) {
      return { height: positiveInt(o.height, `"${key}".height`, source), width: positiveInt(o.width, `"${key}".width`, source) };
    }
    if ('shortest_edge' in o) {
      if ('longest_edge' in o && o.longest_edge !== null) {
        throw new UserError(`${source}: "${key}" with longest_edge is not supported (only shortest_edge or height/width)`);
      }
      return { shortestEdge: positiveInt(o.shortest_edge, `"${key}".shortest_edge`, source) };
    }
  }
  throw new UserError(`${source}: "${key}" must be an int, [height, width], {height, width} or {shortest_edge}, got ${JSON.stringify(v)}`);
}

/**
 * Parse `preprocessor_config.json` (already JSON-parsed). `source` names the file for
 * error messages. Unknown processor types are a UserError.
 */
export function parseImageProcessorConfig(json: unknown, source: string): ImageProcessorConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new UserError(`${source}: not a JSON object`);
  const cfg = json as Json;
  const rawType = (cfg.image_processor_type ?? cfg.feature_extractor_type) as unknown;
  if (typeof rawType !== 'string') {
    throw new UserError(`${source}: no "image_processor_type"; phaselens supports ${SUPPORTED}`);
  }
  // transformers 5 names its backends CLIPImageProcessorPil / …Fast; the settings are the same
  const t = rawType.replace(/(Fast|Pil)$/, '').replace(/FeatureExtractor$/, 'ImageProcessor');
  if (t !== 'CLIPImageProcessor' && t !== 'BlipImageProcessor' && t !== 'LlavaNextImageProcessor' && t !== 'ChameleonImageProcessor') {
    throw new UserError(`${source}: image processor "${rawType}" is not supported; phaselens supports ${SUPPORTED}`);
  }
  const clip = t !== 'BlipImageProcessor';
  // ChameleonImageProcessor's class defaults: 512 px, LANCZOS, × 0.0078 − 1
  const cham = t === 'ChameleonImageProcessor';
  const size = sizeDict(cfg.size ?? (cham ? { shortest_edge: 512 } : clip ? { shortest_edge: 224 } : { height: 384, width: 384 }), !clip, 'size', source);
  if (!clip && !('height' in size)) throw new UserError(`${source}: BlipImageProcessor needs "size" as {height, width}`);
  const crop = sizeDict(cfg.crop_size ?? (cham ? { height: 512, width: 512 } : { height: 224, width: 224 }), true, 'crop_size', source);
  if (!('height' in crop)) throw new UserError(`${source}: "crop_size" must be {height, width}`);
  const resample = num(cfg, 'resample', cham ? PIL_RESAMPLE.LANCZOS : PIL_RESAMPLE.BICUBIC, source, true);
  if (!(resample in FILTERS)) {
    throw new UserError(
      `${source}: resample=${resample} is not supported (${resample === 0 ? 'NEAREST' : 'unknown'}); phaselens implements Pillow's LANCZOS 1, BILINEAR 2, BICUBIC 3, BOX 4, HAMMING 5`,
    );
  }
  const out: ImageProcessorConfig = {
    source,
    processorType: t,
    doResize: bool(cfg, 'do_resize', true, source),
    size,
    resample,
    doCenterCrop: clip ? bool(cfg, 'do_center_crop', true, source) : false,
    cropSize: crop,
    doRescale: bool(cfg, 'do_rescale', true, source),
    rescaleFactor: num(cfg, 'rescale_factor', cham ? 0.0078 : 1 / 255, source),
    doNormalize: bool(cfg, 'do_normalize', true, source),
    imageMean: triple(cfg, 'image_mean', cham ? [1, 1, 1] : OPENAI_CLIP_MEAN, source),
    imageStd: triple(cfg, 'image_std', cham ? [1, 1, 1] : OPENAI_CLIP_STD, source),
    imageGridPinpoints: t === 'LlavaNextImageProcessor' ? pinpoints(cfg.image_grid_pinpoints ?? DEFAULT_PINPOINTS, source) : null,
  };
  if (out.imageStd.some((s) => s === 0)) throw new UserError(`${source}: "image_std" contains 0`);
  return out;
}

// ---------------------------------------------------------------------------------------
// Pillow-compatible resampling (src/libImaging/Resample.c semantics, 8 bits per channel).

interface Filter {
  fn: (x: number) => number;
  support: number;
}

const f32 = Math.fround;
const HAMMING_A = f32(0.54);
const HAMMING_B = f32(0.46);

function sinc(x: number): number {
  if (x === 0.0) return 1.0;
  x = x * Math.PI;
  return Math.sin(x) / x;
}

const FILTERS: Record<number, Filter> = {
  [PIL_RESAMPLE.BOX]: { fn: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0), support: 0.5 },
  [PIL_RESAMPLE.BILINEAR]: {
    fn: (x) => {
      if (x < 0.0) x = -x;
      return x < 1.0 ? 1.0 - x : 0.0;
    },
    support: 1.0,
  },
  [PIL_RESAMPLE.HAMMING]: {
    fn: (x) => {
      if (x < 0.0) x = -x;
      if (x === 0.0) return 1.0;
      if (x >= 1.0) return 0.0;
      x = x * Math.PI;
      return (Math.sin(x) / x) * (HAMMING_A + HAMMING_B * Math.cos(x));
    },
    support: 1.0,
  },
  [PIL_RESAMPLE.BICUBIC]: {
    // Keys' cubic convolution with a = -0.5, written in Pillow's operation order.
    fn: (x) => {
      const a = -0.5;
      if (x < 0.0) x = -x;
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    },
    support: 2.0,
  },
  [PIL_RESAMPLE.LANCZOS]: { fn: (x) => (-3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0), support: 3.0 },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis: per output index,
 * the first input index (`bounds[2i]`), the tap count (`bounds[2i+1]`) and `ksize` fixed
 * point weights starting at `kk[i * ksize]`.
 */
function precomputeCoeffs(inSize: number, outSize: number, filter: Filter): { ksize: number; bounds: Int32Array; kk: Int32Array } {
  const scale = inSize / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let ww = 0.0;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0.0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Pillow's `clip8`: fixed point → 0..255 (arithmetic shift, i.e. floor). */
function clip8(ss: number): number {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resize an RGB image to `width` × `height` exactly as Pillow's
 * `Image.resize((width, height), resample)` does for mode RGB (`reducing_gap=None`).
 */
export function pillowResize(img: RgbImage, width: number, height: number, resample: number = PIL_RESAMPLE.BICUBIC): RgbImage {
  const filter = FILTERS[resample];
  if (!filter) throw new UserError(`resample=${resample} is not supported (Pillow filters 1-5 only)`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new UserError(`cannot resize to ${width}×${height}`);
  }
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  const needH = width !== img.width;
  const needV = height !== img.height;
  const vert = precomputeCoeffs(img.height, height, filter);
  let src = img;
  // Horizontal pass over just the rows the vertical pass reads (as Pillow does).
  let rowShift = 0;
  if (needH) {
    const yFirst = vert.bounds[0];
    const yLast = vert.bounds[(height - 1) * 2] + vert.bounds[(height - 1) * 2 + 1];
    const rows = needV ? yLast - yFirst : img.height;
    const y0 = needV ? yFirst : 0;
    const { ksize, bounds, kk } = precomputeCoeffs(img.width, width, filter);
    const out = new Uint8Array(width * rows * 3);
    const inData = img.data;
    for (let yy = 0; yy < rows; yy++) {
      const rowBase = (yy + y0) * img.width * 3;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2];
        const xmax = bounds[xx * 2 + 1];
        const kb = xx * ksize;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < xmax; x++) {
          const w = kk[kb + x];
          const p = rowBase + (x + xmin) * 3;
          s0 += inData[p] * w;
          s1 += inData[p + 1] * w;
          s2 += inData[p + 2] * w;
        }
        const o = (yy * width + xx) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    src = { width, height: rows, data: out };
    rowShift = y0;
  }
  if (!needV) return src;
  const out = new Uint8Array(width * height * 3);
  const { ksize, bounds, kk } = vert;
  const inData = src.data;
  const stride = width * 3;
  for (let yy = 0; yy < height; yy++) {
    const ymin = bounds[yy * 2] - rowShift;
    const ymax = bounds[yy * 2 + 1];
    const kb = yy * ksize;
    for (let xx = 0; xx < width; xx++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let y = 0; y < ymax; y++) {
        const w = kk[kb + y];
        const p = (y + ymin) * stride + xx * 3;
        s0 += inData[p] * w;
        s1 += inData[p + 1] * w;
        s2 += inData[p + 2] * w;
      }
      const o = (yy * width + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return { width, height, data: out };
}

// ---------------------------------------------------------------------------------------
// The HF steps.

/** HF `get_resize_output_image_size(default_to_square=False)`: [height, width]. */
export function shortestEdgeSize(height: number, width: number, shortestEdge: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((shortestEdge * long) / short);
  return width <= height ? [newLong, shortestEdge] : [shortestEdge, newLong];
}

/** HF `image_transforms.center_crop` on an 8-bit RGB image (zero padding when too small). */
export function centerCrop(img: RgbImage, cropHeight: number, cropWidth: number): RgbImage {
  const { width: W, height: H } = img;
  let top = Math.floor((H - cropHeight) / 2);
  let left = Math.floor((W - cropWidth) / 2);
  const out = new Uint8Array(cropHeight * cropWidth * 3);
  // Pad to at least the crop size (zeros), image placed at ceil(diff / 2).
  const newH = Math.max(cropHeight, H);
  const newW = Math.max(cropWidth, W);
  const padTop = Math.ceil((newH - H) / 2);
  const padLeft = Math.ceil((newW - W) / 2);
  top += padTop;
  left += padLeft;
  for (let y = 0; y < cropHeight; y++) {
    const sy = y + top - padTop;
    if (sy < 0 || sy >= H) continue;
    for (let x = 0; x < cropWidth; x++) {
      const sx = x + left - padLeft;
      if (sx < 0 || sx >= W) continue;
      const o = (y * cropWidth + x) * 3;
      const i = (sy * W + sx) * 3;
      out[o] = img.data[i];
      out[o + 1] = img.data[i + 1];
      out[o + 2] = img.data[i + 2];
    }
  }
  return { width: cropWidth, height: cropHeight, data: out };
}

/** The LLaVA repo's padding colour: `tuple(int(x * 255) for x in image_mean)`. */
export function padColorFromMean(mean: readonly number[]): [number, number, number] {
  return [Math.trunc(mean[0] * 255), Math.trunc(mean[1] * 255), Math.trunc(mean[2] * 255)];
}

/** The LLaVA repo's `expand2square`: pad the short side with `background`, image centred. */
export function expandToSquare(img: RgbImage, background: readonly [number, number, number]): RgbImage {
  const { width: W, height: H } = img;
  if (W === H) return img;
  const S = Math.max(W, H);
  const out = new Uint8Array(S * S * 3);
  for (let i = 0; i < S * S; i++) {
    out[i * 3] = background[0];
    out[i * 3 + 1] = background[1];
    out[i * 3 + 2] = background[2];
  }
  const ox = W > H ? 0 : Math.floor((H - W) / 2);
  const oy = W > H ? Math.floor((W - H) / 2) : 0;
  for (let y = 0; y < H; y++) out.set(img.data.subarray(y * W * 3, (y + 1) * W * 3), ((y + oy) * S + ox) * 3);
  return { width: S, height: S, data: out };
}

/**
 * ChameleonImageProcessor's convert_to_rgb for an image with transparency: in float64,
 * (1 − a/255)·255 + (a/255)·c, truncated to uint8 (numpy's astype), as HF computes it.
 */
export function blendOnWhite(img: RgbImage): RgbImage {
  const { alpha, data } = img;
  if (!alpha) return img;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < alpha.length; i++) {
    const a = alpha[i] / 255;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.trunc((1 - a) * 255 + a * data[i * 3 + c]);
  }
  return { width: img.width, height: img.height, data: out };
}

/**
 * The 8-bit part of the processor: optional expand2square, resize, centre crop. This is
 * the image the model sees, before rescale and normalise (useful for figures and tests).
 */
export function resizeAndCrop(img: RgbImage, cfg: ImageProcessorConfig, opts: PreprocessOptions = {}): RgbImage {
  let im = cfg.processorType === 'ChameleonImageProcessor' ? blendOnWhite(img) : img;
  if (opts.padToSquare) im = expandToSquare(im, padColorFromMean(cfg.imageMean));
  if (cfg.doResize) {
    const [h, w] = 'shortestEdge' in cfg.size ? shortestEdgeSize(im.height, im.width, cfg.size.shortestEdge) : [cfg.size.height, cfg.size.width];
    if (h <= 0 || w <= 0) throw new UserError(`image of ${img.width}×${img.height} is too thin to resize (target ${w}×${h})`);
    im = pillowResize(im, w, h, cfg.resample);
  }
  if (cfg.doCenterCrop) im = centerCrop(im, cfg.cropSize.height, cfg.cropSize.width);
  return im;
}

/**
 * The part of an original image of height × width that `resizeAndCrop` keeps, as
 * [x0, y0, x1, y1) in original pixels (fractional): the resize scales, the crop cuts the
 * centre, expand2square's padding is not image (so the box may reach past the image there).
 */
export function shownRegion(height: number, width: number, cfg: ImageProcessorConfig, opts: PreprocessOptions = {}): [number, number, number, number] {
  const side = Math.max(width, height);
  // expand2square places the image at these offsets in a side × side square
  const [ox, oy, W, H] = opts.padToSquare && width !== height ? [width > height ? 0 : Math.floor((side - width) / 2), width > height ? Math.floor((side - height) / 2) : 0, side, side] : [0, 0, width, height];
  const [h, w] = !cfg.doResize ? [H, W] : 'shortestEdge' in cfg.size ? shortestEdgeSize(H, W, cfg.size.shortestEdge) : [cfg.size.height, cfg.size.width];
  const [ch, cw] = cfg.doCenterCrop ? [cfg.cropSize.height, cfg.cropSize.width] : [h, w];
  const top = Math.floor((h - ch) / 2);
  const left = Math.floor((w - cw) / 2);
  const sx = W / w;
  const sy = H / h;
  return [left * sx - ox, top * sy - oy, (left + cw) * sx - ox, (top + ch) * sy - oy];
}

/** Rescale and normalise an 8-bit RGB image to float32 CHW, rounding as HF/numpy do. */
export function toPixelValues(img: RgbImage, cfg: ImageProcessorConfig): PixelValues {
  const { width: W, height: H, data } = img;
  const plane = W * H;
  const out = new Float32Array(3 * plane);
  const mean = cfg.imageMean.map(f32);
  const std = cfg.imageStd.map(f32);
  // Per channel, a 256-entry table: the value depends only on the byte.
  for (let c = 0; c < 3; c++) {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      let x = cfg.doRescale ? f32(v * cfg.rescaleFactor) : v;
      if (cfg.doNormalize) x = f32(f32(x - mean[c]) / std[c]);
      lut[v] = x;
    }
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = lut[data[i * 3 + c]];
  }
  return { data: out, shape: [3, H, W] };
}

/** The whole processor: decoded RGB image → `pixel_values` [3, H, W]. */
export function preprocessImage(img: RgbImage, cfg: ImageProcessorConfig, opts: PreprocessOptions = {}): PixelValues {
  return toPixelValues(resizeAndCrop(img, cfg, opts), cfg);
}
