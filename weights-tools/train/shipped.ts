/**
 * Where the shipped organisms and their evaluation scenes live in the repository, for the
 * demo and the tests. Built by weights-tools/train/build.sh (models) and
 * weights-tools/shapes/generate.ts (scenes); see each folder's README.md.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OrganismArch } from './organisms.ts';

const ROOT = fileURLToPath(new URL('../organisms/', import.meta.url));

export const organismDir = (arch: OrganismArch) => join(ROOT, `shapes-${arch}`);

/** Shapes-world seed 2001 (never used in training), 48 scenes at 48 px. */
export const EVAL_SCENES = join(ROOT, 'eval-scenes');
export const EVAL_SEED = 2001;

export const evalCoco = () => `coco:${join(EVAL_SCENES, 'captions.json')}:${join(EVAL_SCENES, 'images')}`;
export const evalVqa = () => `vqa:${join(EVAL_SCENES, 'vqa.jsonl')}:${join(EVAL_SCENES, 'images')}`;
