/**
 * Rasterises a shapes-world scene to an 8-bit RGB image at the models' input size, with
 * anti-aliasing: each pixel is covered by 4×4 sub-samples and an object's colour is
 * blended in by the fraction of them inside it.
 *
 * Geometry is in image fractions, so any size ≥ MIN_IMAGE_SIZE draws the same scene:
 * anchors sit at the centres of the thirds (1/6, 1/2, 5/6), a big object has half-extent
 * 0.14 of the side and a small one 0.08, which leaves a gap between big objects on
 * neighbouring anchors even with the largest jitter.
 */
import { UserError } from '../../src/errors.ts';
import type { RgbImage } from '../../src/io/image.ts';
import type { Colour, Position, Scene, Shape, Size } from './world.ts';

export const RGB: Record<Colour, [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 225],
  yellow: [240, 220, 50],
  purple: [150, 60, 200],
  orange: [250, 140, 30],
  white: [250, 250, 250],
  black: [20, 20, 20],
};

/** Object centres before jitter, as (x, y) fractions of the side. */
export const ANCHOR: Record<Position, [number, number]> = {
  left: [1 / 6, 1 / 2],
  right: [5 / 6, 1 / 2],
  top: [1 / 2, 1 / 6],
  bottom: [1 / 2, 5 / 6],
  middle: [1 / 2, 1 / 2],
};

const HALF_EXTENT: Record<Size, number> = { small: 0.08, big: 0.14 };

/** Below this a small object is under 4 px across and shapes stop being distinguishable. */
export const MIN_IMAGE_SIZE = 24;
const SUB = 4;

/** The 10 vertices of a five-pointed star (outer radius 1, inner 0.45), point up. */
const STAR = Array.from({ length: 10 }, (_, k) => {
  const r = k % 2 ? 0.45 : 1;
  const a = -Math.PI / 2 + (k * Math.PI) / 5;
  return [r * Math.cos(a), r * Math.sin(a)] as const;
});

function inPolygon(x: number, y: number, poly: readonly (readonly [number, number])[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Is (u, v), in units of the half-extent around the centre (v down), inside the shape? */
export function inside(shape: Shape, u: number, v: number): boolean {
  switch (shape) {
    case 'circle':
      return u * u + v * v <= 1;
    case 'square':
      return Math.abs(u) <= 0.85 && Math.abs(v) <= 0.85;
    case 'triangle':
      return v <= 0.8 && v >= -1 && Math.abs(u) <= (v + 1) / 1.8;
    case 'star':
      return inPolygon(u, v, STAR);
    case 'cross':
      return (Math.abs(u) <= 0.33 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.33 && Math.abs(u) <= 1);
  }
}

export function checkImageSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_IMAGE_SIZE) throw new UserError(`image size must be an integer ≥ ${MIN_IMAGE_SIZE} px (smaller objects lose their shape), got ${size}`);
}

export function render(scene: Scene, size: number): RgbImage {
  checkImageSize(size);
  const data = new Uint8Array(size * size * 3).fill(scene.background);
  for (const o of scene.objects) {
    const cx = (ANCHOR[o.position][0] + o.jitter[0]) * size;
    const cy = (ANCHOR[o.position][1] + o.jitter[1]) * size;
    const r = HALF_EXTENT[o.size] * size;
    const colour = RGB[o.colour];
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(size, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(size, Math.ceil(cx + r)); x++) {
        let hits = 0;
        for (let sy = 0; sy < SUB; sy++) {
          for (let sx = 0; sx < SUB; sx++) {
            if (inside(o.shape, (x + (sx + 0.5) / SUB - cx) / r, (y + (sy + 0.5) / SUB - cy) / r)) hits++;
          }
        }
        if (hits === 0) continue;
        const a = hits / (SUB * SUB);
        const at = (y * size + x) * 3;
        for (let c = 0; c < 3; c++) data[at + c] = Math.round(data[at + c] * (1 - a) + colour[c] * a);
      }
    }
  }
  return { width: size, height: size, data };
}

/** The uniform grey image of the "does the model use the image" control. */
export function blankImage(size: number, grey = 128): RgbImage {
  checkImageSize(size);
  return { width: size, height: size, data: new Uint8Array(size * size * 3).fill(grey) };
}
