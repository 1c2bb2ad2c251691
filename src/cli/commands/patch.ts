/** `phaselens patch`: activation patching from a source image, or steering with a vector (README, "patch"). */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { SafetensorsFile } from '../../io/safetensors.ts';
import { openFileSource } from '../../io/source-node.ts';
import { GROUP_HELP } from '../../interventions/groups.ts';
import { checkPatch, patch, type PatchRun } from '../../pipeline/patch.ts';
import { addGpuOptions, type GpuCliOptions } from '../gpu-session.ts';
import { addModelOptions, promptSpec, withModel, type PromptOptions } from '../model-run.ts';
import { num } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';

interface Options extends GpuCliOptions, PromptOptions {
  model: string;
  source?: string;
  target: string;
  token: string;
  answers: string;
  firstToken: boolean;
  layers: string;
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
    addModelOptions(program.command('patch').description('copy the residual stream of a token group from a source-image run into a target-image run (or add a vector), per layer: logit difference of two answers'))
      .option('--source <image>', 'the image whose activations are copied in (patching)')
      .requiredOption('--target <image>', 'the image of the run that is edited')
      .requiredOption('--token <group>', `the patched positions; groups: ${GROUP_HELP}`)
      .requiredOption('--answers <a,b>', 'two answers, each a word (digits too) or a token id as id:N: logit difference = logit[a] − logit[b] at the last position')
      .option('--first-token', 'use the first token of a several-token answer', false)
      .option('--layers <spec>', 'layers to sweep: all, 0-31 or 3,5,9', 'all')
      .option('--from-layer-on', 'edit at layer l and every later layer (default: at l only)', false)
      .option('--add <vec.safetensors>', 'steering: add this F32 [d] vector instead of patching')
      .option('--scale <s>', 'multiplier of the --add vector', '1')
      .requiredOption('--out <dir>', 'output folder (patch.json, figure, report)'),
  ).action(async (o: Options) => {
    checkOutputFolder('--out', o.out);
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
