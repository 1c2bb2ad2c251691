/**
 * The shapes world: scenes of 1–3 objects, each with a shape, one of 8 named colours, a
 * size and one of five places on the canvas. Everything is drawn from one seeded
 * generator (mulberry32), so a seed is a data set.
 *
 * Places are anchors, not free coordinates: "left" is the centre of the left third, "top"
 * of the top third, and so on, so every position word has one unambiguous meaning and
 * two objects never share a place. Rendering and language live in render.ts and
 * language.ts; this file only decides what is in a scene.
 */
import { UserError } from '../../src/errors.ts';
import { mulberry32 } from '../../src/util/random.ts';

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'cross'] as const;
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black'] as const;
export const SIZES = ['small', 'big'] as const;
/** In the order captions list objects (reading order over the plus-shaped anchors). */
export const POSITIONS = ['left', 'top', 'middle', 'bottom', 'right'] as const;

export type Shape = (typeof SHAPES)[number];
export type Colour = (typeof COLOURS)[number];
export type Size = (typeof SIZES)[number];
export type Position = (typeof POSITIONS)[number];

export interface SceneObject {
  shape: Shape;
  colour: Colour;
  size: Size;
  position: Position;
  /** Sub-pixel offset of the centre from its anchor, in image fractions (a little variety). */
  jitter: [number, number];
}

export interface Scene {
  objects: SceneObject[];
  /** Background grey level (0–255); near 128, so a blank grey image looks like an empty scene. */
  background: number;
}

export interface WorldOptions {
  minObjects?: number;
  maxObjects?: number;
}

export const MAX_OBJECTS = POSITIONS.length;
/** Largest |jitter| per axis, as a fraction of the image side. */
export const JITTER = 0.02;

export function checkWorld(o: WorldOptions): Required<WorldOptions> {
  const min = o.minObjects ?? 1;
  const max = o.maxObjects ?? 3;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min) {
    throw new UserError(`objects per scene must satisfy 1 ≤ min ≤ max, got min ${min}, max ${max}`);
  }
  if (max > MAX_OBJECTS) throw new UserError(`${max} objects do not fit the canvas: it has ${MAX_OBJECTS} places (${POSITIONS.join(', ')}) and objects never share one`);
  return { minObjects: min, maxObjects: max };
}

export type Rand = () => number;

export const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

function shuffled<T>(rand: Rand, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * One scene. Shapes and colours repeat on purpose (each object copies an earlier one's
 * shape or colour with probability 0.35), so counting and binding questions have
 * non-trivial answers; a (colour, shape) pair never repeats, so "the red circle" always
 * names one object.
 */
export function sampleScene(rand: Rand, o: WorldOptions = {}): Scene {
  const { minObjects, maxObjects } = checkWorld(o);
  const n = minObjects + Math.floor(rand() * (maxObjects - minObjects + 1));
  const places = shuffled(rand, POSITIONS).slice(0, n);
  const objects: SceneObject[] = [];
  for (const position of places) {
    for (;;) {
      const prev = objects.length ? pick(rand, objects) : null;
      const shape = prev && rand() < 0.35 ? prev.shape : pick(rand, SHAPES);
      const colour = prev && rand() < 0.35 ? prev.colour : pick(rand, COLOURS);
      if (objects.some((x) => x.shape === shape && x.colour === colour)) continue;
      const jitter: [number, number] = [(rand() * 2 - 1) * JITTER, (rand() * 2 - 1) * JITTER];
      objects.push({ shape, colour, size: pick(rand, SIZES), position, jitter });
      break;
    }
  }
  objects.sort((a, b) => POSITIONS.indexOf(a.position) - POSITIONS.indexOf(b.position));
  return { objects, background: 120 + Math.floor(rand() * 17) };
}

/** `count` scenes from `seed`; scene i depends only on (seed, i). */
export function sampleScenes(seed: number, count: number, o: WorldOptions = {}): Scene[] {
  checkWorld(o);
  return Array.from({ length: count }, (_, i) => sampleScene(mulberry32((seed * 1_000_003 + i) >>> 0), o));
}

/** A rand() for the language of scene i (questions, negatives), independent of its layout. */
export function sceneRand(seed: number, i: number, stream: number): Rand {
  return mulberry32((seed * 1_000_003 + i + stream * 0x9e3779b1) >>> 0);
}
