/**
 * Runs the independent PyTorch intervention reference test/reference/interventions_ref.py
 * (attention knockout, post-softmax token ablation, residual-stream patching / steering on
 * the LLaMA decoder of LLaVA-1.5 or InstructBLIP; the family is the checkpoint's
 * model_type) and returns its JSON.
 *
 *   const ko = await runKnockoutReference({ model, pixelValues, pixelShape: [3, 42, 42], inputIds,
 *     entries: [{ dst: [24], src: [5, 6, 7], layers: [0, 1, 2] }] });
 *   ko.p[0] / ko.p_base
 *
 * Positions index the language model's sequence after the image tokens are expanded
 * (LLaVA) or placed first (InstructBLIP); layers are 0..L-1; heads are query heads. See
 * the docstring of interventions_ref.py for the exact definitions.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from './pyref.ts';

export const INTERVENTIONS_REF_SCRIPT = join(import.meta.dirname, 'interventions_ref.py');
/** The `reference.version` interventions_ref.py writes; bump both together. */
export const INTERVENTIONS_REF_VERSION = '1';

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

interface Common {
  reference: { format: 'phaselens-interventions-ref'; version: string };
  family: 'llava' | 'instructblip';
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
}

export interface KnockoutRef extends Common {
  answer_id: number;
  /** softmax(last logits)[answer_id] without intervention. */
  p_base: number;
  /** Per entry, with the knockout. */
  p: number[];
  /** Per entry, argmax of the knocked-out last logits. */
  argmax: number[];
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

export async function runKnockoutReference(opts: InterventionRunOptions & { entries: KnockoutEntry[]; answerId?: number }): Promise<KnockoutRef> {
  const args = ['--knockout', JSON.stringify(opts.entries)];
  if (opts.answerId !== undefined) args.push('--answer-id', String(opts.answerId));
  return (await run(opts, args, async () => [])) as KnockoutRef;
}

export async function runAblateReference(opts: InterventionRunOptions & { entries: AblateEntry[]; answerId?: number; maxNewTokens?: number }): Promise<AblateRef> {
  const args = ['--ablate', JSON.stringify(opts.entries), '--max-new-tokens', String(opts.maxNewTokens ?? 0)];
  if (opts.answerId !== undefined) args.push('--answer-id', String(opts.answerId));
  return (await run(opts, args, async () => [])) as AblateRef;
}

export async function runPatchReference(opts: InterventionRunOptions & { patch: PatchSpec }): Promise<PatchRef> {
  const p = opts.patch;
  return (await run(opts, [], async (dir) => {
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
  })) as PatchRef;
}

async function writeF32(path: string, a: Float32Array): Promise<void> {
  await writeFile(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

async function run(opts: InterventionRunOptions, args: string[], more: (dir: string) => Promise<string[]>): Promise<Common> {
  const [c, h, w] = opts.pixelShape;
  if (opts.pixelValues.length !== c * h * w) throw new Error(`pixelValues has ${opts.pixelValues.length} values, pixelShape needs ${c * h * w}`);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('the Python references assume a little-endian host');
  if (opts.inputIds.length === 0 || !opts.inputIds.every((t) => Number.isSafeInteger(t) && t >= 0)) throw new Error('inputIds must be a non-empty list of non-negative integers');
  const dir = await mkdtemp(join(tmpdir(), 'interventions-ref-'));
  try {
    const pix = join(dir, 'pixel_values.f32');
    await writeF32(pix, opts.pixelValues);
    const all = [INTERVENTIONS_REF_SCRIPT, '--model', opts.model, '--pixel-values', pix, '--pixel-shape', `${c},${h},${w}`, '--input-ids', opts.inputIds.join(',')];
    // "=" keeps an empty list one argument that argparse does not mistake for a flag
    if (opts.qformerInputIds) all.push(`--qformer-input-ids=${opts.qformerInputIds.join(',')}`);
    if (opts.withLogits) all.push('--with-logits');
    all.push(...args, ...(await more(dir)), ...(opts.extraArgs ?? []));
    const { stdout } = await runPython(all);
    const res = JSON.parse(stdout.trim().split('\n').pop()!) as Common;
    if (res.reference?.format !== 'phaselens-interventions-ref' || res.reference.version !== INTERVENTIONS_REF_VERSION) {
      throw new Error(`interventions_ref.py wrote ${JSON.stringify(res.reference)}, expected version ${INTERVENTIONS_REF_VERSION} (the script and interventions-ref.ts disagree)`);
    }
    return res;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
