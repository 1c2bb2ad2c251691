/** `phaselens patch`: activation patching from a source image, or steering with a vector (README, "patch"). */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { SafetensorsFile } from '../../io/safetensors.ts';
import { openFileSource } from '../../io/source-node.ts';
import { GROUP_HELP } from '../../interventions/groups.ts';
import { checkPatch, checkPatchSet, patch, patchSet, type PatchRun, type PatchSetRun } from '../../pipeline/patch.ts';
import { selectItems } from '../../pipeline/analyze.ts';
import { DATA_SPEC_HELP } from '../../data/index.ts';
import { addGpuOptions, type GpuCliOptions } from '../gpu-session.ts';
import { addModelOptions, promptSpec, reportRun, withModel, type PromptOptions } from '../model-run.ts';
import { int, num } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';

interface Options extends GpuCliOptions, PromptOptions {
  model: string;
  source?: string;
  target?: string;
  data?: string;
  limit?: string;
  seed: string;
  token: string;
  answers?: string;
  firstToken: boolean;
  layers?: string;
  every?: string;
  fromLayerOn: boolean;
  add?: string;
  scale: string;
  out: string;
  dtype?: string;
  padToSquare: boolean;
}

/** The steering vector: the only tensor of the file (or the one named `vector`), F32 [d]. */
async function readVector(path: string): Promise<Float32Array> {
  const f = await SafetensorsFile.open(await openFileSource(path));
  try {
    const names = [...f.tensors.keys()];
    const name = names.length === 1 ? names[0] : names.includes('vector') ? 'vector' : undefined;
    if (!name) throw new UserError(`${path}: expected one tensor (or one named "vector"), found ${names.length}: ${names.slice(0, 5).join(', ')}`);
    const info = f.info(name);
    if (info.dtype !== 'F32' || info.shape.length !== 1) throw new UserError(`${path}: ${name} must be F32 [d], found ${info.dtype} [${info.shape.join(', ')}]`);
    const bytes = await f.readTensor(name);
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  } finally {
    await f.close();
  }
}

export function register(program: Command): void {
  addGpuOptions(
    addModelOptions(program.command('patch').description('copy the residual stream of a token group from a source-image run into a target-image run (or add a vector), per layer: logit difference of two answers; with --data, steering success over a data set (arXiv 2412.06646)'))
      .option('--source <image>', 'the image whose activations are copied in (patching)')
      .option('--target <image>', 'the image of the run that is edited')
      .option('--data <spec>', `instead of --source/--target: every item a target, patched from the next item with another label (else the next item); ${DATA_SPEC_HELP}`)
      .requiredOption('--token <group>', `the patched positions, e.g. end-of-image; groups: ${GROUP_HELP}`)
      .option('--answers <a,b>', 'two answers, each a word (digits too) or a token id as id:N: logit difference = logit[a] − logit[b] at the last position (needed with --target; with --data default: the source\'s top answer, the target\'s)')
      .option('--first-token', 'use the first token of a several-token answer', false)
      .option('--layers <spec>', 'layers to sweep: all, 0-31 or 3,5,9 (default all)')
      .option('--every <k>', 'instead of --layers: every k-th layer, 0, k, 2k, …')
      .option('--limit <n>', 'with --data: a reproducible random sample of n items')
      .option('--seed <s>', 'with --data: seed of the sample and, with each item\'s id, of its random-image token', '0')
      .option('--from-layer-on', 'edit at layer l and every later layer (default: at l only)', false)
      .option('--add <vec.safetensors>', 'steering: add this F32 [d] vector instead of patching')
      .option('--scale <s>', 'multiplier of the --add vector', '1')
      .requiredOption('--out <dir>', 'output folder (patch.json, figure, report; with --data a result per item and the aggregate)'),
  ).action(async (o: Options) => {
    checkOutputFolder('--out', o.out);
    const every = int('--every', o.every, 1);
    if (o.data !== undefined) {
      if (o.source !== undefined || o.target !== undefined || o.add !== undefined) throw new UserError('--data patches each item from another item: give it without --source, --target and --add');
      const seed = int('--seed', o.seed, 0)!;
      const selection = selectItems({ data: o.data, limit: int('--limit', o.limit, 1), seed });
      const run: PatchSetRun = { out: o.out, data: o.data, prompt: promptSpec(o), padToSquare: o.padToSquare, token: o.token, answers: o.answers, firstToken: o.firstToken, layers: o.layers, every, fromLayerOn: o.fromLayerOn, seed };
      await withModel(o, (f) => checkPatchSet(f, run, selection.items), async (gpu, m) => {
        const r = await patchSet(gpu, m, selection.items, run);
        reportRun(r.summary, o.out, r.report);
      });
      return;
    }
    if (o.target === undefined) throw new UserError('give --target IMG (with --source or --add), or --data SPEC');
    if (o.limit !== undefined) throw new UserError('--limit samples a --data set');
    const run: PatchRun = {
      out: o.out,
      source: o.source,
      target: o.target,
      prompt: promptSpec(o),
      padToSquare: o.padToSquare,
      token: o.token,
      answers: o.answers,
      firstToken: o.firstToken,
      layers: o.layers,
      every,
      fromLayerOn: o.fromLayerOn,
      add: o.add ? { vector: await readVector(o.add), scale: num('--scale', o.scale)!, file: o.add } : undefined,
    };
    await withModel(o, (f) => checkPatch(f, run), async (gpu, m, inputs) => {
      const r = await patch(gpu, m, run, inputs);
      console.log(`wrote ${r.file}`);
      console.log(`report: ${r.report}`);
    });
  });
}
