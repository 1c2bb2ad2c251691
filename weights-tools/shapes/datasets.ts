/**
 * Writes a shapes-world sample in the three data-set formats phaselens reads, plus the
 * ground truth the evaluation and tests use:
 *
 *   OUT/images/shapes-<seed>-<i>.png     the scenes
 *   OUT/captions.json                    COCO captions format   (coco:OUT/captions.json:OUT/images)
 *   OUT/vqa.jsonl                        one line per question   (vqa:OUT/vqa.jsonl:OUT/images)
 *   OUT/winoground/examples.jsonl        attribute-swapped pairs (winoground:…/examples.jsonl:…/images)
 *   OUT/winoground/images/ex_<k>_img_<j>.png
 *   OUT/scenes.json                      {seed, size, scenes: [{file, objects, caption, qa}]}
 *
 * A Winoground pair is a two-object scene and the same scene with the two colours
 * swapped: "a big red circle on the left and a small blue square at the top" against
 * "a big blue circle on the left and a small red square at the top", each with its own image.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encode } from 'fast-png';
import type { RgbImage } from '../../src/io/image.ts';
import { caption, CAPTION_PROMPT, questions } from './language.ts';
import { render } from './render.ts';
import { sampleScene, sampleScenes, sceneRand, type Scene } from './world.ts';

export interface DatasetOptions {
  seed: number;
  scenes: number;
  /** Winoground pairs (default scenes / 4). */
  pairs?: number;
  size: number;
  out: string;
}

const png = (img: RgbImage) => encode({ width: img.width, height: img.height, data: img.data, depth: 8, channels: 3 });

/** Question stream of sceneRand (the layout uses the scene's own generator). */
export const QA_STREAM = 1;
const PAIR_STREAM = 2;

export const sceneFile = (seed: number, i: number) => `shapes-${seed}-${String(i).padStart(4, '0')}.png`;

/** The colour-swapped twin of a two-object scene with different colours. */
export function swapColours(scene: Scene): Scene {
  const [a, b] = scene.objects;
  return { ...scene, objects: [{ ...a, colour: b.colour }, { ...b, colour: a.colour }] };
}

export async function writeDatasets(o: DatasetOptions): Promise<{ scenes: number; questions: number; pairs: number }> {
  const images = join(o.out, 'images');
  const wino = join(o.out, 'winoground');
  await mkdir(images, { recursive: true });
  await mkdir(join(wino, 'images'), { recursive: true });

  const scenes = sampleScenes(o.seed, o.scenes);
  const truth = [];
  const coco = { info: { description: `phaselens shapes world, seed ${o.seed}` }, licenses: [], images: [] as object[], annotations: [] as object[] };
  const vqa: string[] = [];
  for (const [i, scene] of scenes.entries()) {
    const file = sceneFile(o.seed, i);
    await writeFile(join(images, file), png(render(scene, o.size)));
    const qa = questions(sceneRand(o.seed, i, QA_STREAM), scene);
    truth.push({ file, objects: scene.objects, background: scene.background, caption: caption(scene), qa });
    coco.images.push({ id: i, file_name: file, width: o.size, height: o.size });
    coco.annotations.push({ id: i, image_id: i, caption: caption(scene) });
    for (const [k, q] of qa.entries()) vqa.push(JSON.stringify({ id: `${file.slice(0, -4)}-${q.type}`, image: file, question: q.question, answers: [q.answer], type: q.type }));
  }

  // pairs come from their own scenes: two objects with different colours
  const pairs = o.pairs ?? Math.floor(o.scenes / 4);
  const examples: string[] = [];
  for (let k = 0, i = 0; k < pairs; i++) {
    const candidate = sampleScene(sceneRand(o.seed, i, PAIR_STREAM), { minObjects: 2, maxObjects: 2 });
    const [a, b] = candidate.objects;
    if (a.colour === b.colour || a.shape === b.shape) continue;
    const twin = swapColours(candidate);
    for (const [j, s] of [candidate, twin].entries()) await writeFile(join(wino, 'images', `ex_${k}_img_${j}.png`), png(render(s, o.size)));
    examples.push(JSON.stringify({ id: k, image_0: `ex_${k}_img_0`, image_1: `ex_${k}_img_1`, caption_0: caption(candidate), caption_1: caption(twin), tag: 'Attribute', secondary_tag: 'Color', num_main_preds: 1, collapsed_tag: 'Object' }));
    k++;
  }

  await writeFile(join(o.out, 'captions.json'), JSON.stringify(coco, null, 1) + '\n');
  await writeFile(join(o.out, 'vqa.jsonl'), vqa.join('\n') + '\n');
  await writeFile(join(wino, 'examples.jsonl'), examples.join('\n') + (examples.length ? '\n' : ''));
  await writeFile(join(o.out, 'scenes.json'), JSON.stringify({ seed: o.seed, size: o.size, caption_prompt: CAPTION_PROMPT, scenes: truth }, null, 1) + '\n');
  return { scenes: scenes.length, questions: vqa.length, pairs };
}
