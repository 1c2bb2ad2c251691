/**
 * What is said about a scene: one caption and one question of each of the five types,
 * all from fixed templates, answers a single word.
 *
 *   caption    "a big red circle on the left and a small blue square at the top"
 *   colour     "What color is the circle?"            (the shape names one object, else
 *              "What color is the circle on the left?")              -> "red"
 *   shape      "What shape is on the left?"                          -> "circle"
 *   count      "How many circles are there?" / "How many red shapes are there?"
 *                                                                    -> "zero" … "three"
 *   existence  "Is there a red circle?"    (half yes; half of the no's are binding
 *              traps: a colour and a shape that are both present, on different objects)
 *                                                                    -> "yes" / "no"
 *   position   "Where is the red circle?"                            -> "left" … "middle"
 */
import { COLOURS, pick, SHAPES, type Position, type Rand, type Scene, type SceneObject, type Shape } from './world.ts';

export const QUESTION_TYPES = ['colour', 'shape', 'count', 'existence', 'position'] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface Qa {
  type: QuestionType;
  question: string;
  answer: string;
}

/** The prompt of the caption task (also `analyze`'s default prompt). */
export const CAPTION_PROMPT = 'Describe the image.';

const WHERE: Record<Position, string> = {
  left: 'on the left',
  right: 'on the right',
  top: 'at the top',
  bottom: 'at the bottom',
  middle: 'in the middle',
};
const PLURAL: Record<Shape, string> = { circle: 'circles', square: 'squares', triangle: 'triangles', star: 'stars', cross: 'crosses' };
const NUMBER = ['zero', 'one', 'two', 'three', 'four', 'five'];

export const describeObject = (o: SceneObject) => `a ${o.size} ${o.colour} ${o.shape} ${WHERE[o.position]}`;

export function caption(scene: Scene): string {
  const parts = scene.objects.map(describeObject);
  return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}

/** Every word an answer or caption can use (the models' working vocabulary). */
export const ANSWER_WORDS = [...COLOURS, ...SHAPES, ...NUMBER.slice(0, 4), 'yes', 'no', ...Object.keys(WHERE)];

function colourQa(rand: Rand, scene: Scene): Qa {
  const o = pick(rand, scene.objects);
  const unique = scene.objects.filter((x) => x.shape === o.shape).length === 1;
  return { type: 'colour', question: `What color is the ${o.shape}${unique ? '' : ` ${WHERE[o.position]}`}?`, answer: o.colour };
}

function shapeQa(rand: Rand, scene: Scene): Qa {
  const o = pick(rand, scene.objects);
  return { type: 'shape', question: `What shape is ${WHERE[o.position]}?`, answer: o.shape };
}

function countQa(rand: Rand, scene: Scene): Qa {
  // three in four ask about something present, so most answers are not "zero"
  const present = rand() < 0.75;
  const from = present ? pick(rand, scene.objects) : null;
  if (rand() < 0.5) {
    const shape = from?.shape ?? pick(rand, SHAPES);
    const n = scene.objects.filter((x) => x.shape === shape).length;
    return { type: 'count', question: `How many ${PLURAL[shape]} are there?`, answer: NUMBER[n] };
  }
  const colour = from?.colour ?? pick(rand, COLOURS);
  const n = scene.objects.filter((x) => x.colour === colour).length;
  return { type: 'count', question: `How many ${colour} shapes are there?`, answer: NUMBER[n] };
}

function existenceQa(rand: Rand, scene: Scene): Qa {
  const has = (colour: string, shape: string) => scene.objects.some((x) => x.colour === colour && x.shape === shape);
  let colour: string;
  let shape: string;
  if (rand() < 0.5) {
    ({ colour, shape } = pick(rand, scene.objects));
  } else {
    do {
      const trap = scene.objects.length > 1 && rand() < 0.5;
      colour = trap ? pick(rand, scene.objects).colour : pick(rand, COLOURS);
      shape = trap ? pick(rand, scene.objects).shape : pick(rand, SHAPES);
    } while (has(colour, shape));
  }
  return { type: 'existence', question: `Is there a ${colour} ${shape}?`, answer: has(colour, shape) ? 'yes' : 'no' };
}

function positionQa(rand: Rand, scene: Scene): Qa {
  const o = pick(rand, scene.objects);
  return { type: 'position', question: `Where is the ${o.colour} ${o.shape}?`, answer: o.position };
}

const MAKERS: Record<QuestionType, (rand: Rand, scene: Scene) => Qa> = {
  colour: colourQa,
  shape: shapeQa,
  count: countQa,
  existence: existenceQa,
  position: positionQa,
};

/** One question of every type, in QUESTION_TYPES order. */
export function questions(rand: Rand, scene: Scene): Qa[] {
  return QUESTION_TYPES.map((t) => MAKERS[t](rand, scene));
}
