/**
 * LLaVA-NeXT's "anyres" image processor (HF `LlavaNextImageProcessor`, the slow PIL path of
 * image_processing_pil_llava_next.py with `select_best_resolution` and
 * `get_patch_output_size` of image_processing_utils.py) and the image-token arithmetic its
 * processor and model share (processing_llava_next.py `_get_number_of_features`,
 * modeling_llava_next.py `get_anyres_image_grid_shape` / `unpad_image`).
 *
 * For an RGB image of H × W and a tile of t px (`crop_size.height`, the vision tower's
 * `image_size`), pinpoints [h, w] (multiples of t):
 * 1. best = `select_best_resolution`: for each pinpoint, scale = min(w / W, h / H), the
 *    image shrunk to int(W·scale) × int(H·scale) keeps min(that area, W·H) effective pixels;
 *    the largest effective area wins, ties go to the least wasted area (h·w − effective),
 *    the first listed on a full tie.
 * 2. resize (Pillow, the processor's `resample`) to fit best keeping the aspect ratio: the
 *    side with the smaller scale becomes best's, the other `min(ceil(side · scale), best)`.
 * 3. pad with black (0) to best, centred: floor((best − new) / 2) before, the rest after.
 * 4. cut into (best_h / t) × (best_w / t) tiles of t × t, row by row.
 * 5. the base view: the whole image resized to exactly s × s (s = `size.shortest_edge`, or
 *    `size` height × width), no aspect ratio kept.
 * 6. every view (base first, then the tiles) goes through the CLIP steps of
 *    image-processor.ts: resize shortest edge (a no-op at t), centre crop t, rescale,
 *    normalise → pixel_values [1 + rows·cols, 3, t, t].
 *
 * Image tokens (LlavaNextProcessor, and what `pack_image_features` builds): with P = t /
 * patch_size patches a side, the tile grid is a (rows·P) × (cols·P) patch grid; `unpad`
 * removes the rows (image wider than the grid) or columns (otherwise) that cover the
 * padding: new = int(round(H · (gridW / W), 7)) rows (or int(round(W · (gridH / H), 7))
 * columns), (grid − new) // 2 removed from each side. Count = base P² + kept rows ×
 * (kept columns + 1): one `image_newline` after each row. (Only vision_feature_select_strategy
 * "default" packs: with "full" HF's own grid reshape fails, so the model refuses it.)
 */
import { UserError } from '../errors.ts';
import type { RgbImage } from './image.ts';
import { pillowResize, resizeAndCrop, toPixelValues, type ImageProcessorConfig, type PixelValues } from './image-processor.ts';

/** How one image was cut: what the model needs to pack its features (pixel_values carry it). */
export interface AnyresLayout {
  /** The original image, [height, width] (HF `image_sizes`). */
  imageSize: [number, number];
  /** The chosen pinpoint, [height, width]. */
  best: [number, number];
  /** Tile grid: rows × cols tiles of `tile` px. */
  rows: number;
  cols: number;
  tile: number;
}

/** HF `select_best_resolution` (step 1 of the header); sizes are [height, width]. */
export function selectBestResolution(height: number, width: number, pinpoints: readonly (readonly [number, number])[]): [number, number] {
  let best: [number, number] | null = null;
  let maxEffective = 0;
  let minWasted = Infinity;
  for (const [h, w] of pinpoints) {
    const scale = Math.min(w / width, h / height);
    const effective = Math.min(Math.trunc(width * scale) * Math.trunc(height * scale), width * height);
    const wasted = w * h - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = [h, w];
    }
  }
  if (!best) throw new UserError(`no image_grid_pinpoints entry fits an image of ${width}×${height}`);
  return best;
}

/** HF `get_patch_output_size`: the size the image is resized to inside `target` ([height, width]). */
export function patchOutputSize(height: number, width: number, target: readonly [number, number]): [number, number] {
  const [th, tw] = target;
  const sw = tw / width;
  const sh = th / height;
  return sw < sh ? [Math.min(Math.ceil(height * sw), th), tw] : [th, Math.min(Math.ceil(width * sh), tw)];
}

/** Python's `int(round(x, 7))` for x ≥ 0 (both round the exact binary value). */
function intRound7(x: number): number {
  return Math.trunc(Number(x.toFixed(7)));
}

/**
 * `unpad_image` on a gridH × gridW patch grid of an image of H × W: the kept rows
 * [top, bottom) and columns [left, right).
 */
export function unpaddedRegion(height: number, width: number, gridH: number, gridW: number): { top: number; bottom: number; left: number; right: number } {
  if (width / height > gridW / gridH) {
    const pad = Math.floor((gridH - intRound7(height * (gridW / width))) / 2);
    return { top: pad, bottom: gridH - pad, left: 0, right: gridW };
  }
  const pad = Math.floor((gridW - intRound7(width * (gridH / height))) / 2);
  return { top: 0, bottom: gridH, left: pad, right: gridW - pad };
}

/** The tile size and the checked pinpoints of a LlavaNextImageProcessor config. */
export function anyresTile(cfg: ImageProcessorConfig): { tile: number; pinpoints: [number, number][] } {
  const src = cfg.source ?? 'image processor';
  if (!cfg.imageGridPinpoints) throw new UserError(`${src}: ${cfg.processorType} has no image_grid_pinpoints; LLaVA-NeXT needs LlavaNextImageProcessor`);
  // HF: crop_size.height when cropping, else size.height, else the shortest edge
  const tile = cfg.doCenterCrop ? cfg.cropSize.height : 'height' in cfg.size ? cfg.size.height : cfg.size.shortestEdge;
  for (const [h, w] of cfg.imageGridPinpoints) {
    if (h % tile !== 0 || w % tile !== 0) throw new UserError(`${src}: image_grid_pinpoints entry [${h}, ${w}] is not a multiple of the tile size ${tile}`);
  }
  return { tile, pinpoints: cfg.imageGridPinpoints };
}

/** Steps 1-4 of the header: the tile layout of an image of height × width. */
export function anyresLayout(height: number, width: number, cfg: ImageProcessorConfig): AnyresLayout {
  const { tile, pinpoints } = anyresTile(cfg);
  const best = selectBestResolution(height, width, pinpoints);
  return { imageSize: [height, width], best, rows: best[0] / tile, cols: best[1] / tile, tile };
}

/** The 8-bit views (base first, then the tiles row by row), before the per-view CLIP steps. */
export function anyresViews(img: RgbImage, cfg: ImageProcessorConfig): { views: RgbImage[]; layout: AnyresLayout } {
  const layout = anyresLayout(img.height, img.width, cfg);
  const { best, tile } = layout;
  const [nh, nw] = patchOutputSize(img.height, img.width, best);
  const resized = pillowResize(img, nw, nh, cfg.resample);
  const top = Math.floor((best[0] - nh) / 2);
  const left = Math.floor((best[1] - nw) / 2);
  const views: RgbImage[] = [];
  const [bh, bw] = 'shortestEdge' in cfg.size ? [cfg.size.shortestEdge, cfg.size.shortestEdge] : [cfg.size.height, cfg.size.width];
  views.push(pillowResize(img, bw, bh, cfg.resample));
  for (let r = 0; r < layout.rows; r++) {
    for (let c = 0; c < layout.cols; c++) {
      const out = new Uint8Array(tile * tile * 3); // black padding
      for (let y = 0; y < tile; y++) {
        const sy = r * tile + y - top;
        if (sy < 0 || sy >= nh) continue;
        for (let x = 0; x < tile; x++) {
          const sx = c * tile + x - left;
          if (sx < 0 || sx >= nw) continue;
          const o = (y * tile + x) * 3;
          const i = (sy * nw + sx) * 3;
          out[o] = resized.data[i];
          out[o + 1] = resized.data[i + 1];
          out[o + 2] = resized.data[i + 2];
        }
      }
      views.push({ width: tile, height: tile, data: out });
    }
  }
  return { views, layout };
}

/** The whole processor: RGB image → pixel_values [views, 3, t, t], base view first. */
export function preprocessAnyres(img: RgbImage, cfg: ImageProcessorConfig): PixelValues {
  const { views, layout } = anyresViews(img, cfg);
  const px = views.map((v) => toPixelValues(resizeAndCrop(v, cfg), cfg));
  const [, h, w] = px[0].shape;
  if (px.some((p) => p.shape[1] !== h || p.shape[2] !== w)) throw new UserError(`${cfg.source ?? 'image processor'}: the views come out in different sizes`);
  const data = new Float32Array(px.length * 3 * h * w);
  px.forEach((p, i) => data.set(p.data, i * p.data.length));
  return { data, shape: [px.length, 3, h, w], anyres: layout };
}

/** The image-feature positions of one image, in the order pack_image_features lays them out. */
export interface AnyresTokens {
  /** Base-view features (P²: the CLS is dropped, strategy "default"). */
  base: number;
  /** The unpadded patch grid: rows × cols patch features, one newline after each row. */
  rows: number;
  cols: number;
  /** The kept region in the full (tile rows · P) × (tile cols · P) patch grid. */
  region: { top: number; bottom: number; left: number; right: number };
  total: number;
}

/**
 * The part of the original image, [x0, y0, x1, y1) in its pixels, that the kept (unpadded)
 * region of the tile grid shows (through the resize into the pinpoint; a kept edge row or
 * column may show some padding, so the box can reach a little past the image).
 */
export function tileRegionBox(layout: AnyresLayout, patchSize: number): [number, number, number, number] {
  const [H, W] = layout.imageSize;
  const [nh, nw] = patchOutputSize(H, W, layout.best);
  const top = Math.floor((layout.best[0] - nh) / 2);
  const left = Math.floor((layout.best[1] - nw) / 2);
  const { region } = anyresTokens(layout, patchSize);
  const s = patchSize;
  return [((region.left * s - left) * W) / nw, ((region.top * s - top) * H) / nh, ((region.right * s - left) * W) / nw, ((region.bottom * s - top) * H) / nh];
}

/** LlavaNextProcessor's `<image>` count (the header), from the layout and the vision tower's patch size. */
export function anyresTokens(layout: AnyresLayout, patchSize: number): AnyresTokens {
  const P = layout.tile / patchSize;
  const region = unpaddedRegion(layout.imageSize[0], layout.imageSize[1], layout.rows * P, layout.cols * P);
  const rows = region.bottom - region.top;
  const cols = region.right - region.left;
  const base = P * P;
  return { base, rows, cols, region, total: base + rows * (cols + 1) };
}
