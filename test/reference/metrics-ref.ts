/**
 * Runs the independent metrics reference: test/reference/llava_ref.py or
 * test/reference/instructblip_ref.py (PyTorch forward, `--with-attentions`; chosen by the
 * checkpoint's model_type) and then test/reference/metrics_ref.py (float64, naive formulas:
 * pairwise cosines, per-head Kobayashi vectors, full-vocabulary softmax), and returns the
 * per-image metrics in the schema of `phaselens analyze`.
 *
 *   const ref = await runMetricsReference({ model, pixelValues, pixelShape: [3, 42, 42], inputIds });
 *   ref.contextualization.inter[l]      // l = 0..L, HF hidden-state index
 *   ref.norm_attention.head[l][h][j]    // decoder layer l, head h, key j (query = last by default)
 *   ref.logit_lens.top_ids[l][i][r]     // hidden-state index l, i-th image token, rank r
 *
 * See the docstring of metrics_ref.py for the exact definitions and conventions.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INSTRUCTBLIP_REF_SCRIPT, INSTRUCTBLIP_REF_VERSION, LLAVA_REF_SCRIPT, LLAVA_REF_VERSION, readRefSafetensors, runPython, type RefTensor } from './pyref.ts';

export const METRICS_REF_SCRIPT = join(import.meta.dirname, 'metrics_ref.py');
/** The `reference.version` metrics_ref.py writes; bump both together. */
export const METRICS_REF_VERSION = '1';

export interface Contextualization {
  inter: number | null;
  intra_image: number | null;
  intra_text: number | null;
}

export interface MetricsRef {
  reference: { format: 'phaselens-metrics-ref'; version: string };
  options: { drop_bos: boolean; query: number; k: number };
  /** image = [start, end), end exclusive; text = every other position (minus BOS with dropBos). */
  tokens: { seq: number; image: [number, number]; text: number[] };
  contextualization: {
    /** [L + 1] each; null where a set is too small (inter: empty set; intra: < 2 tokens). */
    inter: (number | null)[];
    intra_image: (number | null)[];
    intra_text: (number | null)[];
    /** The same on residual_final (layer L before the final norm). */
    last_layer_prenorm: Contextualization;
  };
  /** layer [L][seq] = ‖Σ_h α^h_{q,j} f^h(x_j)‖; head [L][H][seq] = ‖α^h_{q,j} f^h(x_j)‖. */
  norm_attention: { query: number; layer: number[][]; head: number[][][] };
  /** [L + 1][n_img][k]; index L is not normed again. */
  logit_lens: { k: number; top_ids: number[][][]; top_probs: number[][][] };
  /** Only with `debugSums`: attn_out_from_f[l] = Σ_j Σ_h α^h_{q,j} f^h(x_j) [d]. */
  debug?: { attn_out_from_f: number[][] };
}

export interface MetricsOptions {
  /** Leave the BOS position out of the text set. */
  dropBos?: boolean;
  /** Where BOS is (default: the first position outside the image span: 0 for LLaVA, Q for InstructBLIP). */
  bosPosition?: number;
  /** Query row of norm_attention (default: the last token; negative counts from the end). */
  query?: number;
  /** LogitLens top-k (default 5). */
  k?: number;
  /** Image span [start, end) (default: from the activations' metadata). */
  image?: [number, number];
  /** Also return debug.attn_out_from_f. */
  debugSums?: boolean;
}

export interface MetricsReferenceOptions extends MetricsOptions {
  /** HF llava or instructblip checkpoint folder (config.json + model.safetensors or shards). */
  model: string;
  /** Preprocessed pixel_values, channels first. */
  pixelValues: Float32Array;
  pixelShape: [number, number, number];
  /**
   * LLaVA: token ids with the image token once (expanded by llava_ref.py) or already
   * expanded. InstructBLIP: [image]*Q + [BOS] + prompt, or without image tokens (prepended).
   */
  inputIds: number[];
  /** InstructBLIP only (required there): the instruction in the Q-Former's vocabulary. */
  qformerInputIds?: number[];
}

/**
 * Runs metrics_ref.py on an activations file that llava_ref.py wrote with
 * `--with-attentions` (for re-running with other options without a new forward).
 */
export async function computeMetricsReference(activations: string, model: string, opts: MetricsOptions = {}): Promise<MetricsRef> {
  const args = [METRICS_REF_SCRIPT, '--activations', activations, '--model', model, '--topk', String(opts.k ?? 5)];
  if (opts.dropBos) args.push('--drop-bos');
  if (opts.bosPosition !== undefined) args.push('--bos-position', String(opts.bosPosition));
  if (opts.query !== undefined) args.push('--query', String(opts.query));
  if (opts.image) args.push('--image-start', String(opts.image[0]), '--image-end', String(opts.image[1]));
  if (opts.debugSums) args.push('--debug-sums');
  const stdout = (await runPython(args)).stdout;
  const ref = JSON.parse(stdout) as MetricsRef;
  if (ref.reference?.format !== 'phaselens-metrics-ref' || ref.reference.version !== METRICS_REF_VERSION) {
    throw new Error(`metrics_ref.py wrote format ${ref.reference?.format} version ${ref.reference?.version}, expected phaselens-metrics-ref ${METRICS_REF_VERSION} (metrics_ref.py and metrics-ref.ts disagree)`);
  }
  return ref;
}

/** Runs llava_ref.py (with attentions) and metrics_ref.py; returns the metrics. */
export async function runMetricsReference(opts: MetricsReferenceOptions): Promise<MetricsRef> {
  return (await runMetricsReferenceFull(opts)).metrics;
}

/**
 * As runMetricsReference, plus the forward's tensors the metrics were computed from
 * (hidden_states.{l}, residual_final, logits, attentions.{l}, attn_input_normed.{l}, …)
 * and its metadata. With `workDir`, the activations file stays there as
 * `activations.safetensors` (for computeMetricsReference); otherwise a temporary folder
 * is used and removed.
 */
export async function runMetricsReferenceFull(
  opts: MetricsReferenceOptions & { workDir?: string },
): Promise<{ metrics: MetricsRef; tensors: Map<string, RefTensor>; metadata: Record<string, string>; activations?: string }> {
  const [c, h, w] = opts.pixelShape;
  if (opts.pixelValues.length !== c * h * w) {
    throw new Error(`pixelValues has ${opts.pixelValues.length} values, pixelShape [${c}, ${h}, ${w}] needs ${c * h * w}`);
  }
  if (opts.inputIds.length === 0 || !opts.inputIds.every((t) => Number.isSafeInteger(t) && t >= 0)) {
    throw new Error('inputIds must be a non-empty list of non-negative integers');
  }
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('runMetricsReference assumes a little-endian host');
  const dir = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'metrics-ref-')));
  await mkdir(dir, { recursive: true });
  try {
    const pix = join(dir, 'pixel_values.f32');
    const activations = join(dir, 'activations.safetensors');
    await writeFile(pix, new Uint8Array(opts.pixelValues.buffer, opts.pixelValues.byteOffset, opts.pixelValues.byteLength));
    const family = modelType(opts.model);
    const args = ['--model', opts.model, '--pixel-values', pix, '--pixel-shape', `${c},${h},${w}`, '--input-ids', opts.inputIds.join(','), '--out', activations, '--with-attentions'];
    if (family === 'instructblip') {
      if (!opts.qformerInputIds) throw new Error(`${opts.model} is an instructblip checkpoint: qformerInputIds are required`);
      args.push(`--qformer-input-ids=${opts.qformerInputIds.join(',')}`);
    } else if (opts.qformerInputIds) {
      throw new Error(`${opts.model} is a llava checkpoint: qformerInputIds do not apply`);
    }
    const [script, format, version] = family === 'llava' ? [LLAVA_REF_SCRIPT, 'phaselens-llava-ref', LLAVA_REF_VERSION] : [INSTRUCTBLIP_REF_SCRIPT, 'phaselens-instructblip-ref', INSTRUCTBLIP_REF_VERSION];
    await runPython([script, ...args]);
    const { tensors, metadata } = await readRefSafetensors(activations);
    if (metadata.format !== format || metadata.version !== version) {
      throw new Error(`${activations}: format ${metadata.format} version ${metadata.version}, expected ${format} ${version}`);
    }
    const metrics = await computeMetricsReference(activations, opts.model, opts);
    return { metrics, tensors, metadata, ...(opts.workDir ? { activations } : {}) };
  } finally {
    if (!opts.workDir) await rm(dir, { recursive: true, force: true });
  }
}

function modelType(model: string): 'llava' | 'instructblip' {
  const mt = (JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { model_type?: string }).model_type;
  if (mt !== 'llava' && mt !== 'instructblip') throw new Error(`${model}/config.json: model_type ${mt}, the metrics reference handles llava and instructblip`);
  return mt;
}
