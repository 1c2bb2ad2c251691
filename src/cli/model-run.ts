/**
 * What `dump`, `generate` and `analyze` share: the model and prompt options, and their
 * preparation in the order that fails fast — the checkpoint is validated, the prompt
 * tokenised and the image decoded before a single weight is uploaded, so a typo costs
 * seconds, not a 14 GB load. Works for every family (`openModel` dispatches on config.json).
 */
import type { Command } from 'commander';
import type { RunSummary } from '../pipeline/runner.ts';
import type { Gpu } from '../gpu/context.ts';
import { UserError } from '../errors.ts';
import { readImageFile } from '../io/load-node.ts';
import { nodeDirectory } from '../io/source-node.ts';
import { PRECISION_F16_DTYPE } from '../models/open.ts';
import { FAMILIES, openModel } from '../models/registry.ts';
import type { Capabilities, LoadOptions, PromptSpec, Vlm, VlmFiles, VlmInput } from '../models/vlm.ts';
import { addGpuOptions, checkProfilePath, finishProfile, loadProgress, openGpu, parseDtype, parsePrecision, type GpuCliOptions } from './gpu-session.ts';

export interface PromptOptions {
  prompt?: string;
  inputIds?: string;
  qformerInputIds?: string;
  chat: boolean;
}

/** The load options every model command takes. */
export interface LoadCliOptions {
  dtype?: string;
  precision?: string;
}

export interface ModelRunOptions extends GpuCliOptions, PromptOptions, LoadCliOptions {
  model: string;
  image?: string;
  padToSquare: boolean;
}

/** The titles of the families that have capability `c`, for help texts. */
const having = (c: keyof Capabilities) => FAMILIES.filter((f) => f.capabilities[c]).map((f) => f.title).join(', ') || 'none';

/** The options every model command takes (help text from the family table). */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--model <dir>', `Hugging Face checkpoint folder (${FAMILIES.map((f) => `${f.title}: model_type ${f.modelType}`).join('; ')}; told apart by config.json)`)
    .option('--prompt <text>', `the prompt (use <image> for the image, or --chat: ${having('chatTemplate')}); with a Q-Former (${having('qformer')}): the instruction, for both tokenizers`)
    .option('--input-ids <ids>', `comma-separated LM token ids instead of --prompt (${having('qformer')}: with or without the query image tokens in front)`)
    .option('--qformer-input-ids <ids>', `${having('qformer')}: comma-separated Q-Former token ids instead of tokenising --prompt`)
    .option('--chat', `${having('chatTemplate')}: wrap the prompt in the checkpoint's chat template`, false)
    .option('--dtype <dtype>', 'weights on the GPU: f32 or f16 (default: as stored in the checkpoint; f16 with --precision f16)')
    .option('--precision <p>', "matmul precision: f32 (default; f32-exact) or f16 (HF transformers' fp16, model.half(): f16 weights, f16 matmul inputs and outputs, f32 accumulation; needs shader-f16)")
    .option('--pad-to-square', "LLaVA-1.5's original preprocessing: pad to a square with the mean colour instead of center-cropping", false);
}

export function addModelRunOptions(cmd: Command): Command {
  return addGpuOptions(addModelOptions(cmd).option('--image <file>', 'PNG or JPEG'));
}

export function promptSpec(o: PromptOptions): PromptSpec {
  return { prompt: o.prompt, inputIds: o.inputIds, qformerInputIds: o.qformerInputIds, chat: o.chat };
}

export interface ModelRun {
  gpu: Gpu;
  m: Vlm;
  x: VlmInput;
}

/** Opens the folder (no weights) and runs `check` before the GPU and the weights; closes it on error. */
export async function openChecked<T>(dir: string, check: (files: VlmFiles) => T): Promise<{ files: VlmFiles; checked: T }> {
  const files = await openModel(nodeDirectory(dir));
  try {
    return { files, checked: check(files) };
  } catch (e) {
    await files.close();
    throw e;
  }
}

/** `newTokens`: how many tokens the run will append (generation), checked against the context too. */
/** --dtype and --precision, checked before any work. */
export function loadOptions(o: LoadCliOptions): Pick<LoadOptions, 'dtype' | 'precision'> {
  const l = { dtype: parseDtype(o.dtype), precision: parsePrecision(o.precision) };
  if (l.precision === 'f16' && l.dtype === 'f32') throw new UserError(PRECISION_F16_DTYPE);
  return l;
}

export async function prepareModelRun(o: ModelRunOptions, newTokens = 0): Promise<ModelRun> {
  checkProfilePath(o);
  const load = loadOptions(o);
  const { files, checked: x } = await openChecked(o.model, (f) => {
    const image = o.image ? readImageFile(o.image) : undefined;
    const x = f.prepare(promptSpec(o), image, { padToSquare: o.padToSquare });
    const max = f.lm.max_position_embeddings;
    if (x.ids.length + newTokens > max) throw new UserError(`${x.ids.length} prompt tokens + ${newTokens} new tokens exceed max_position_embeddings = ${max}`);
    return x;
  });
  const gpu = await openGpu(o);
  const m = await files.load(gpu, { ...load, onProgress: loadProgress('loading weights') });
  return { gpu, m, x };
}

/**
 * The body of a command over a loaded model: the folder opened and `check` run on it
 * (every flag against the prepared prompt, the inputs read) before the GPU starts and the
 * weights load, then `body` with what `check` returned, then the profile.
 */
export async function withModel<T>(o: GpuCliOptions & LoadCliOptions & { model: string }, check: (files: VlmFiles) => T, body: (gpu: Gpu, m: Vlm, checked: T) => Promise<void>): Promise<void> {
  checkProfilePath(o);
  const load = loadOptions(o);
  const { files, checked } = await openChecked(o.model, check);
  const gpu = await openGpu(o);
  const m = await files.load(gpu, { ...load, onProgress: loadProgress('loading weights') });
  await body(gpu, m, checked);
  await finishProfile(gpu, o);
}

/**
 * The last lines of a data-set command. A run stopped by SIGTERM exits 143, one that ended
 * with items missing (held by another process that did not finish them in time) exits 75
 * (EX_TEMPFAIL), naming them, so a scheduler never sees an incomplete run succeed.
 */
export function reportRun(s: RunSummary, out: string, report: string, noun = 'items'): void {
  const held = s.missing.filter((m) => m.why.startsWith('held by')).length;
  console.log(`${s.done} ${noun}, ${s.skipped} already done, ${s.failed} failed${held ? `, ${held} held by other processes` : ''} (see ${out}/errors.json)`);
  console.log(`report: ${report}`);
  if (s.stopped) {
    console.error(`phaselens: stopped by SIGTERM with ${s.missing.length} item(s) left; re-run the same command to resume`);
    process.exitCode = 143;
  } else if (s.missing.length > 0) {
    const shown = s.missing.slice(0, 10).map((m) => `${m.id} (${m.why})`).join(', ');
    console.error(`phaselens: ${s.missing.length} item(s) have no result: ${shown}${s.missing.length > 10 ? ', …' : ''}; the aggregate and report leave them out; re-run the same command (when the other process has finished) to complete them`);
    process.exitCode = 75;
  }
}
