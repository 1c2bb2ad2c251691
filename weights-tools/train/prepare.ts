/**
 * Training and held-out data for the organisms: shapes-world scenes rendered at the
 * model's image size and every task of each scene tokenised with the checkpoint's own
 * tokenizer files (read from the skeleton folder, so training sees exactly the ids
 * phaselens builds at inference), in one safetensors file train.py reads.
 *
 *   node src/cli/run-ts.mjs weights-tools/train/prepare.ts --model SKELETON --seed 1 --scenes 20000 --out FILE
 *
 * Tensors (M = 6 tasks per scene: the five question types, then the caption; id rows
 * right-padded with -1):
 *   pixels    U8  [N, S, S, 3]   the rendered scenes
 *   scene     I32 [M]            which scene a task is about
 *   task      I32 [M]            0–4: QUESTION_TYPES, 5: caption
 *   answer    I32 [M, A]         the answer's ids, then EOS
 *   patches   I32 [N, G*G, 3]    per vision patch (row-major G×G grid): the shape, colour and
 *                                size index (SHAPES, COLOURS, SIZES) of the object centred in
 *                                it, or -1 — the targets of train.py's vision stage
 *   LLaVA:        first [M, P]   `<s>USER: <image>\n{q} ASSISTANT:` (the chat prompt; <image> once)
 *                 turn  [M, P]   `USER: {q} ASSISTANT:` (a later turn, after an EOS)
 *   InstructBLIP: prompt [M, P]  `</s>{q}` (BOS = </s>; the query tokens go in front in train.py)
 *                 qformer [M, Q] `[CLS] {q} [SEP]` (bert-base-uncased)
 * The file's metadata holds the seed, the arch and the task names.
 */
import { familyOf } from '../../src/models/registry.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { isMain, runStandalone } from '../../src/cli/standalone.ts';
import { UserError } from '../../src/errors.ts';
import { readQformerTokenizer, readTokenizer } from '../../src/io/model-files.ts';
import { writeSafetensors, type TensorSpec } from '../../src/io/safetensors-write.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import type { LmTokenizer } from '../../src/io/tokenizer.ts';
import { QA_STREAM } from '../shapes/datasets.ts';
import { caption, CAPTION_PROMPT, QUESTION_TYPES, questions } from '../shapes/language.ts';
import { ANCHOR, render } from '../shapes/render.ts';
import { COLOURS, sampleScenes, sceneRand, SHAPES, SIZES, type Scene } from '../shapes/world.ts';

export const TASKS = [...QUESTION_TYPES, 'caption'] as const;

export interface PrepareOptions {
  model: string;
  seed: number;
  scenes: number;
  out: string;
}

/** Rows of ids as one padded I32 matrix. */
function padded(rows: number[][]): { data: Int32Array; shape: number[] } {
  const width = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * width).fill(-1);
  rows.forEach((r, i) => data.set(r, i * width));
  return { data, shape: [rows.length, width] };
}

/** [G*G, 3] per-patch object attributes of a scene (-1 where no object is centred). */
function patchTargets(scene: Scene, grid: number): number[] {
  const out = new Array<number>(grid * grid * 3).fill(-1);
  for (const o of scene.objects) {
    const [x, y] = ANCHOR[o.position];
    const at = Math.floor(y * grid) * grid + Math.floor(x * grid);
    out.splice(at * 3, 3, SHAPES.indexOf(o.shape), COLOURS.indexOf(o.colour), SIZES.indexOf(o.size));
  }
  return out;
}

/** Answer ids as they follow the prompt in one tokenisation of prompt + " " + answer. */
function answerIds(tok: LmTokenizer, prompt: string, answer: string): number[] {
  const ids = tok.encode(answer, { addBos: false });
  const whole = tok.encode(`${prompt} ${answer}`, { addBos: false });
  const alone = tok.encode(prompt, { addBos: false });
  if (whole.join() !== [...alone, ...ids].join()) throw new Error(`tokenising ${JSON.stringify(prompt)} + ${JSON.stringify(answer)} merges across the boundary`);
  return [...ids, tok.eosId!];
}

export async function prepare(o: PrepareOptions): Promise<{ scenes: number; tasks: number }> {
  if (!Number.isInteger(o.scenes) || o.scenes < 1) throw new UserError(`--scenes must be a positive integer, got ${o.scenes}`);
  const dir = nodeDirectory(o.model);
  const json = JSON.parse(await readFile(join(o.model, 'config.json'), 'utf8')) as Record<string, unknown>;
  const arch = json.model_type as string;
  const { capabilities } = familyOf(arch, `${o.model}: model_type`);
  const { image_size: size, patch_size: patch } = json.vision_config as { image_size: number; patch_size: number };
  const grid = size / patch;
  const tok = await readTokenizer(dir);
  if (!tok || tok.eosId === null) throw new UserError(`${o.model}: no tokenizer.json with an EOS token`);
  const qtok = capabilities.qformer ? await readQformerTokenizer(dir) : null;
  if (capabilities.qformer && !qtok) throw new UserError(`${o.model}: no qformer_tokenizer/`);

  const scenes = sampleScenes(o.seed, o.scenes);
  const pixels = new Uint8Array(o.scenes * size * size * 3);
  const rows: Record<string, number[][]> = { answer: [], first: [], turn: [], prompt: [], qformer: [] };
  const scene: number[] = [];
  const task: number[] = [];
  const patches: number[] = [];
  for (const [i, s] of scenes.entries()) {
    pixels.set(render(s, size).data, i * size * size * 3);
    patches.push(...patchTargets(s, grid));
    const tasks = [...questions(sceneRand(o.seed, i, QA_STREAM), s), { question: CAPTION_PROMPT, answer: caption(s) }];
    for (const [t, { question, answer }] of tasks.entries()) {
      scene.push(i);
      task.push(t);
      // the training rows follow the family's prompt form: a chat turn around <image>, or the instruction alone (with the Q-Former's copy)
      if (capabilities.chatTemplate) {
        const first = `USER: <image>\n${question} ASSISTANT:`;
        rows.first.push(tok.encode(first, { addBos: true }));
        rows.turn.push(tok.encode(`USER: ${question} ASSISTANT:`, { addBos: false }));
        rows.answer.push(answerIds(tok, first, answer));
      } else {
        rows.prompt.push(tok.encode(question, { addBos: true }));
        rows.qformer.push(qtok!.encodeQformer(question));
        rows.answer.push(answerIds(tok, question, answer));
      }
    }
  }

  const tensors = new Map<string, { data: Uint8Array | Int32Array; shape: number[] }>([
    ['pixels', { data: pixels, shape: [o.scenes, size, size, 3] }],
    ['scene', { data: Int32Array.from(scene), shape: [scene.length] }],
    ['task', { data: Int32Array.from(task), shape: [task.length] }],
    ['patches', { data: Int32Array.from(patches), shape: [o.scenes, grid * grid, 3] }],
  ]);
  for (const [name, r] of Object.entries(rows)) if (r.length) tensors.set(name, padded(r));
  const specs: TensorSpec[] = [...tensors].map(([name, t]) => ({ name, dtype: t.data instanceof Uint8Array ? 'U8' : 'I32', shape: t.shape }));
  const bytes = (t: TensorSpec) => {
    const d = tensors.get(t.name)!.data;
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  };
  await writeSafetensors(o.out, specs, bytes, { format: 'phaselens-shapes-tasks', arch, seed: String(o.seed), tasks: TASKS.join(',') });
  return { scenes: o.scenes, tasks: task.length };
}

export function configurePrepare(cmd: Command): Command {
  return cmd
    .description('render shapes-world scenes and tokenise their tasks for train.py / eval.py')
    .requiredOption('--model <dir>', 'organism checkpoint or skeleton folder (config.json and tokenizer files)')
    .option('--seed <n>', 'world seed', (v) => parseInt(v, 10), 1)
    .addOption(new Option('--scenes <n>', 'number of scenes').argParser((v) => parseInt(v, 10)).makeOptionMandatory())
    .requiredOption('--out <file>', 'output .safetensors')
    .action(async (o: PrepareOptions) => {
      const r = await prepare(o);
      console.log(`wrote ${o.out}: ${r.scenes} scenes, ${r.tasks} tasks`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configurePrepare(new Command('prepare')));
