/**
 * Runs the intervention reference test/reference/interventions_ref.py (attention knockout,
 * post-softmax token ablation, residual-stream patching / steering on the LLaMA decoder of
 * LLaVA-1.5, InstructBLIP or Chameleon, on HF transformers' own model of the checkpoint's model_type,
 * in the venv of .ci/hf-venv.sh) and returns its JSON.
 *
 *   const ko = await runKnockoutReference({ model, pixelValues, pixelShape: [3, 42, 42], inputIds,
 *     entries: [{ dst: [24], src: [5, 6, 7], layers: [0, 1, 2] }] });
 *   ko.p[0] / ko.p_base
 *   const [states, ab] = await runReferenceBatch([statesRequest(opts), ablateRequest({ ...opts, entries })]);  // one process
 *
 * Positions index the language model's sequence after the image tokens are expanded
 * (LLaVA) or placed first (InstructBLIP); layers are 0..L-1; heads are query heads. See
 * the docstring of interventions_ref.py for the exact definitions.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hfPython } from '../../bench/hf.ts';
import { readRefSafetensors, runPython, type RefTensor } from './pyref.ts';

export const INTERVENTIONS_REF_SCRIPT = join(import.meta.dirname, 'interventions_ref.py');
/** The `reference.version` interventions_ref.py writes; bump both together. */
export const INTERVENTIONS_REF_VERSION = '3';

export interface InterventionRunOptions {
  /** HF llava or instructblip checkpoint folder. */
  model: string;
  /** Preprocessed pixel_values, channels first. */
  pixelValues: Float32Array;
  pixelShape: [number, number, number];
  /** LLaVA: image token once (expanded) or expanded; InstructBLIP: with or without the Q placeholders. */
  inputIds: number[];
  /** InstructBLIP only (required there). */
  qformerInputIds?: number[];
  /** Also return last_logits_base and the per-entry last_logits (f32 values, exact). */
  withLogits?: boolean;
  /** Extra command-line arguments (e.g. ['--threads', '1']). */
  extraArgs?: string[];
}

export interface Common {
  reference: { format: 'phaselens-interventions-ref'; version: string };
  /** torch and transformers versions of the venv. */
  versions: { torch: string; transformers: string };
  family: 'llava' | 'instructblip' | 'chameleon';
  /** Sequence length after the image tokens are expanded / placed. */
  seq: number;
  /** Only with withLogits: un-intervened last-position logits [vocab]. */
  last_logits_base?: number[];
}

export interface KnockoutEntry {
  /** Query positions. */
  dst: number[];
  /** Key positions. */
  src: number[];
  /** Decoder layers (0..L-1); every head. */
  layers: number[];
  /** Every generated token is a DST query too (with maxNewTokens). */
  generated?: boolean;
}

export interface KnockoutRef extends Common {
  answer_id: number;
  /** softmax(last logits)[answer_id] without intervention. */
  p_base: number;
  /** Per entry, with the knockout. */
  p: number[];
  /** Per entry, argmax of the knocked-out last logits. */
  argmax: number[];
  /** Only with maxNewTokens > 0: greedy (KV-cached, EOS not stopping) tokens without / with each knockout. */
  tokens_base?: number[];
  tokens?: number[][];
  /** Only with withLogits: [entry][vocab]. */
  last_logits?: number[][];
}

export interface AblateEntry {
  /** Key positions whose post-softmax weights are zeroed (no renormalisation). */
  keys: number[];
  layers: number[];
  /** Query heads; null = all. */
  heads: number[] | null;
}

export interface AblateRef extends Common {
  answer_id: number;
  p_base: number;
  p_answer: number[];
  argmax_after: number[];
  /** Only with maxNewTokens > 0: greedy (KV-cached) tokens without / with each ablation. */
  tokens_base?: number[];
  tokens?: number[][];
  last_logits?: number[][];
}

export interface PatchSpec {
  /** The source run's image (same prompt); required for mode 'copy'. */
  sourcePixelValues?: Float32Array;
  /** Positions whose residual rows are patched. */
  group: number[];
  /** One result per layer l: the patch at resid_pre of layer l (0..L-1). */
  layers: number[];
  mode: 'copy' | 'add';
  /** Also patch every layer after l (copy: the source's rows entering it; add: v·scale again). */
  fromLayerOn?: boolean;
  /** mode 'add': the steering vector [d]. */
  vector?: Float32Array;
  /** mode 'add': the vector's factor (default 1; applied in f32). */
  scale?: number;
  /** logit_diff = logit[answers[0]] − logit[answers[1]] at the last position. */
  answers: [number, number];
}

export interface PatchRef extends Common {
  answers: [number, number];
  base_target: number;
  base_target_top_id: number;
  /** null without a source image. */
  base_source: number | null;
  base_source_top_id: number | null;
  results: { layer: number; logit_diff: number; top_id: number; last_logits?: number[] }[];
  last_logits_source?: number[];
}

/** One call of the script: its arguments (its files written under `dir`) and how its answer is read. */
export interface RefRequest<T> {
  opts: InterventionRunOptions;
  args: (dir: string) => Promise<string[]>;
  read: (res: Common, dir: string) => Promise<T>;
}

type KnockoutOptions = InterventionRunOptions & { entries: KnockoutEntry[]; answerId?: number; maxNewTokens?: number };
type AblateOptions = InterventionRunOptions & { entries: AblateEntry[]; answerId?: number; maxNewTokens?: number };
type PatchOptions = InterventionRunOptions & { patch: PatchSpec };

const answerArgs = (id: number | undefined) => (id === undefined ? [] : ['--answer-id', String(id)]);

export function knockoutRequest(opts: KnockoutOptions): RefRequest<KnockoutRef> {
  return { opts, args: async () => ['--knockout', JSON.stringify(opts.entries), '--max-new-tokens', String(opts.maxNewTokens ?? 0), ...answerArgs(opts.answerId)], read: async (res) => res as KnockoutRef };
}

export function ablateRequest(opts: AblateOptions): RefRequest<AblateRef> {
  const args = ['--ablate', JSON.stringify(opts.entries), '--max-new-tokens', String(opts.maxNewTokens ?? 0), ...answerArgs(opts.answerId)];
  return { opts, args: async () => args, read: async (res) => res as AblateRef };
}

export function patchRequest(opts: PatchOptions): RefRequest<PatchRef> {
  const p = opts.patch;
  const args = async (dir: string) => {
    const spec: Record<string, unknown> = { group: p.group, layers: p.layers, mode: p.mode, from_layer_on: p.fromLayerOn ?? false, scale: p.scale ?? 1, answers: p.answers };
    if (p.sourcePixelValues) {
      if (p.sourcePixelValues.length !== opts.pixelValues.length) throw new Error('sourcePixelValues must have the shape of pixelValues');
      spec.source_pixel_values = join(dir, 'source.f32');
      await writeF32(spec.source_pixel_values as string, p.sourcePixelValues);
    }
    if (p.vector) {
      spec.vector = join(dir, 'vector.f32');
      await writeF32(spec.vector as string, p.vector);
    }
    const file = join(dir, 'patch.json');
    await writeFile(file, JSON.stringify(spec));
    return ['--patch', file];
  };
  return { opts, args, read: async (res) => res as PatchRef };
}

/**
 * The un-intervened forward with HF's stock eager attention: input_ids [seq] (as expanded /
 * placed), hidden_states.{l} [seq, d] (l = 0..L, the last after the final norm), logits [seq, vocab].
 */
export function statesRequest(opts: InterventionRunOptions): RefRequest<Map<string, RefTensor>> {
  return {
    opts,
    args: async (dir) => ['--states', join(dir, 'states.safetensors')],
    read: async (_res, dir) => {
      const file = await readRefSafetensors(join(dir, 'states.safetensors'));
      checkVersion(file.metadata.format, file.metadata.version);
      return file.tensors;
    },
  };
}

export const runKnockoutReference = async (opts: KnockoutOptions) => (await runReferenceBatch([knockoutRequest(opts)]))[0];
export const runAblateReference = async (opts: AblateOptions) => (await runReferenceBatch([ablateRequest(opts)]))[0];
export const runPatchReference = async (opts: PatchOptions) => (await runReferenceBatch([patchRequest(opts)]))[0];
export const runStatesReference = async (opts: InterventionRunOptions) => (await runReferenceBatch([statesRequest(opts)]))[0];

async function writeF32(path: string, a: Float32Array): Promise<void> {
  await writeFile(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function checkVersion(format: string | undefined, version: string | undefined): void {
  if (format !== 'phaselens-interventions-ref' || version !== INTERVENTIONS_REF_VERSION) {
    throw new Error(`interventions_ref.py wrote ${format} version ${version}, expected version ${INTERVENTIONS_REF_VERSION} (the script and interventions-ref.ts disagree)`);
  }
}

/** The script's arguments for one request, its input files written under dir. */
async function requestArgs(req: RefRequest<unknown>, dir: string): Promise<string[]> {
  const opts = req.opts;
  const [c, h, w] = opts.pixelShape;
  if (opts.pixelValues.length !== c * h * w) throw new Error(`pixelValues has ${opts.pixelValues.length} values, pixelShape needs ${c * h * w}`);
  if (opts.inputIds.length === 0 || !opts.inputIds.every((t) => Number.isSafeInteger(t) && t >= 0)) throw new Error('inputIds must be a non-empty list of non-negative integers');
  await mkdir(dir);
  const pix = join(dir, 'pixel_values.f32');
  await writeF32(pix, opts.pixelValues);
  const all = ['--model', opts.model, '--pixel-values', pix, '--pixel-shape', `${c},${h},${w}`, '--input-ids', opts.inputIds.join(',')];
  // "=" keeps an empty list one argument that argparse does not mistake for a flag
  if (opts.qformerInputIds) all.push(`--qformer-input-ids=${opts.qformerInputIds.join(',')}`);
  if (opts.withLogits) all.push('--with-logits');
  return [...all, ...(await req.args(dir)), ...(opts.extraArgs ?? [])];
}

/**
 * Runs the requests in one Python process (`--batch`: each checkpoint is loaded once), in
 * order; the answers in the same order. Starting Python with torch and transformers costs
 * seconds, so the tests batch what they can.
 */
export async function runReferenceBatch<T extends readonly unknown[]>(reqs: { [K in keyof T]: RefRequest<T[K]> }): Promise<T> {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('the Python references assume a little-endian host');
  const dir = await mkdtemp(join(tmpdir(), 'interventions-ref-'));
  try {
    const jobs = await Promise.all(reqs.map((r, i) => requestArgs(r, join(dir, String(i)))));
    const batch = join(dir, 'batch.json');
    await writeFile(batch, JSON.stringify(jobs));
    const { stdout } = await runPython([INTERVENTIONS_REF_SCRIPT, '--batch', batch], hfPython());
    const all = JSON.parse(stdout.trim().split('\n').pop()!) as Common[];
    if (all.length !== reqs.length) throw new Error(`interventions_ref.py answered ${all.length} of ${reqs.length} requests`);
    all.forEach((res) => checkVersion(res.reference?.format, res.reference?.version));
    return (await Promise.all(reqs.map((r, i) => r.read(all[i], join(dir, String(i)))))) as unknown as T;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
