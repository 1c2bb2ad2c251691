/**
 * Runs the independent PyTorch references `test/reference/llava_ref.py` and
 * `test/reference/instructblip_ref.py` (Debian's /usr/bin/python3 with torch and numpy;
 * no transformers) and reads what they write.
 *
 *   const ref = await runLlavaReference({ model, pixelValues, pixelShape: [3, 336, 336], inputIds });
 *   ref.get('hidden_states.0')  // { data: Float32Array, shape: [seq, d_lm] }
 *
 * Names and shapes (seq = prompt length after image-token expansion):
 *   input_ids [seq] (Int32Array), pixel_values [3, H, W], vision_hidden_states.{k}
 *   [1+patches, d_v] (k = 0..Lv), image_features [n_img, d_lm], hidden_states.{l}
 *   [seq, d_lm] (l = 0..L, HF convention: the last one after the final RMSNorm),
 *   residual_final [seq, d_lm], logits [seq, vocab], greedy_tokens [n] (Int32Array),
 *   and with `withAttentions`: attentions.{l} [heads, seq, seq], attn_input_normed.{l}
 *   [seq, d_lm]. See the docstring of llava_ref.py for the exact conventions.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { openFileSource } from '../../src/io/source-node.ts';

export const PYTHON = '/usr/bin/python3';
export const LLAVA_REF_SCRIPT = join(import.meta.dirname, 'llava_ref.py');
/** The `version` metadata llava_ref.py writes; bump both together. */
export const LLAVA_REF_VERSION = '1';

export interface RefTensor {
  data: Float32Array | Int32Array | Uint8Array;
  shape: number[];
}

export interface LlavaReferenceOptions {
  /** HF checkpoint folder (config.json + model.safetensors or shards). */
  model: string;
  /** Preprocessed pixel_values, channels first. */
  pixelValues: Float32Array;
  pixelShape: [number, number, number];
  /** Token ids with the image token once (expanded by the script) or already expanded. */
  inputIds: number[];
  /** Greedy tokens to generate after the prompt (default 0). */
  maxNewTokens?: number;
  /** Stop greedy decoding at eos (default false). */
  stopAtEos?: boolean;
  /** Also return attentions.{l} and attn_input_normed.{l}. */
  withAttentions?: boolean;
  /** Recompute the full forward for each new token instead of using a KV cache. */
  noKvCache?: boolean;
  /** Extra command-line arguments for llava_ref.py. */
  extraArgs?: string[];
}

let torchChecked: boolean | undefined;

/** True if /usr/bin/python3 can import torch and numpy (checked once). */
export function havePyTorch(): boolean {
  torchChecked ??= spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
  return torchChecked;
}

/** Reads a safetensors file of F32 / I32 / U8 tensors into typed arrays, plus its metadata. */
export async function readRefSafetensors(path: string): Promise<{ tensors: Map<string, RefTensor>; metadata: Record<string, string> }> {
  const file = await SafetensorsFile.open(await openFileSource(path));
  try {
    const tensors = new Map<string, RefTensor>();
    for (const [name, info] of file.tensors) {
      const bytes = await file.readTensor(name);
      // copy into a fresh, aligned buffer: the read may be a view at any offset
      const buf = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(buf).set(bytes);
      let data: RefTensor['data'];
      if (info.dtype === 'F32') data = new Float32Array(buf);
      else if (info.dtype === 'I32') data = new Int32Array(buf);
      else if (info.dtype === 'U8') data = new Uint8Array(buf);
      else throw new Error(`${path}: tensor ${name} has dtype ${info.dtype}, expected F32, I32 or U8`);
      tensors.set(name, { data, shape: info.shape });
    }
    return { tensors, metadata: { ...file.metadata } };
  } finally {
    await file.close();
  }
}

/** Runs /usr/bin/python3 with args; rejects with its output when it fails. */
export function runPython(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => reject(new Error(`cannot start ${PYTHON} (needs Debian's python3-torch): ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${PYTHON} ${args.join(' ')} exited with ${code}:\n${stderr || stdout}`));
    });
  });
}

/**
 * Runs llava_ref.py on one image and prompt and returns every tensor it wrote, keyed by
 * name. The file's metadata (image_start, n_image_tokens, …) is in `runLlavaReferenceFull`.
 */
export async function runLlavaReference(opts: LlavaReferenceOptions): Promise<Map<string, RefTensor>> {
  return (await runLlavaReferenceFull(opts)).tensors;
}

/** As runLlavaReference, plus the file's metadata and the script's stdout JSON. */
export async function runLlavaReferenceFull(
  opts: LlavaReferenceOptions,
): Promise<{ tensors: Map<string, RefTensor>; metadata: Record<string, string>; stats: Record<string, unknown> }> {
  checkIds(opts.inputIds, 'inputIds', false);
  const args = ['--input-ids', opts.inputIds.join(','), '--max-new-tokens', String(opts.maxNewTokens ?? 0)];
  if (opts.stopAtEos) args.push('--stop-at-eos');
  if (opts.withAttentions) args.push('--with-attentions');
  if (opts.noKvCache) args.push('--no-kv-cache');
  args.push(...(opts.extraArgs ?? []));
  return runReferenceScript(LLAVA_REF_SCRIPT, 'phaselens-llava-ref', LLAVA_REF_VERSION, opts, args);
}

export const INSTRUCTBLIP_REF_SCRIPT = join(import.meta.dirname, 'instructblip_ref.py');
/** The `version` metadata instructblip_ref.py writes; bump both together. */
export const INSTRUCTBLIP_REF_VERSION = '1';

export interface InstructBlipReferenceOptions {
  /** HF instructblip checkpoint folder (config.json + model.safetensors or shards). */
  model: string;
  /** Preprocessed pixel_values, channels first. */
  pixelValues: Float32Array;
  pixelShape: [number, number, number];
  /**
   * LLaMA ids: [image]*Q + [BOS] + prompt as the processor writes them, or without any
   * image token (the script then prepends the Q placeholders).
   */
  inputIds: number[];
  /** The instruction in the Q-Former's (BERT) vocabulary; may be empty. */
  qformerInputIds: number[];
  /** Greedy tokens to generate after the prompt (default 0). */
  maxNewTokens?: number;
  /** Stop greedy decoding at eos (default false). */
  stopAtEos?: boolean;
  /** Also return attentions.{l} and attn_input_normed.{l} of the language model. */
  withAttentions?: boolean;
  /** Recompute the full forward for each new token instead of using a KV cache. */
  noKvCache?: boolean;
  /** Extra command-line arguments for instructblip_ref.py (e.g. --image-token-id). */
  extraArgs?: string[];
}

/**
 * Runs instructblip_ref.py on one image, prompt and Q-Former instruction and returns every
 * tensor it wrote: input_ids [T], qformer_input_ids [Tq], pixel_values, vision_hidden_states.{k}
 * (k = 0..Lv, before post_layernorm), vision_last_hidden_state, qformer_hidden_states.{k}
 * [Q+Tq, d_q] (k = 0..Lq), query_output [Q, d_q], image_features [Q, d_lm],
 * hidden_states.{l} (l = 0..L, HF convention), residual_final, logits, greedy_tokens.
 */
export async function runInstructBlipReference(opts: InstructBlipReferenceOptions): Promise<Map<string, RefTensor>> {
  return (await runInstructBlipReferenceFull(opts)).tensors;
}

/** As runInstructBlipReference, plus the file's metadata (image_start, n_image_tokens, bos_position, …) and stats. */
export async function runInstructBlipReferenceFull(
  opts: InstructBlipReferenceOptions,
): Promise<{ tensors: Map<string, RefTensor>; metadata: Record<string, string>; stats: Record<string, unknown> }> {
  checkIds(opts.inputIds, 'inputIds', false);
  checkIds(opts.qformerInputIds, 'qformerInputIds', true);
  // "=" keeps an empty list one argument that argparse does not mistake for a flag
  const args = ['--input-ids', opts.inputIds.join(','), `--qformer-input-ids=${opts.qformerInputIds.join(',')}`, '--max-new-tokens', String(opts.maxNewTokens ?? 0)];
  if (opts.stopAtEos) args.push('--stop-at-eos');
  if (opts.withAttentions) args.push('--with-attentions');
  if (opts.noKvCache) args.push('--no-kv-cache');
  args.push(...(opts.extraArgs ?? []));
  return runReferenceScript(INSTRUCTBLIP_REF_SCRIPT, 'phaselens-instructblip-ref', INSTRUCTBLIP_REF_VERSION, opts, args);
}

function checkIds(ids: number[], what: string, mayBeEmpty: boolean): void {
  if ((!mayBeEmpty && ids.length === 0) || !ids.every((t) => Number.isSafeInteger(t) && t >= 0)) {
    throw new Error(`${what} must be a ${mayBeEmpty ? '' : 'non-empty '}list of non-negative integers`);
  }
}

/**
 * Writes the pixel values to a temporary file, runs a reference script with
 * `--model --pixel-values --pixel-shape --out` plus `args`, and reads back its tensors,
 * checking the format / version metadata it must write.
 */
async function runReferenceScript(
  script: string,
  format: string,
  version: string,
  opts: { model: string; pixelValues: Float32Array; pixelShape: [number, number, number] },
  args: string[],
): Promise<{ tensors: Map<string, RefTensor>; metadata: Record<string, string>; stats: Record<string, unknown> }> {
  const [c, h, w] = opts.pixelShape;
  if (opts.pixelValues.length !== c * h * w) {
    throw new Error(`pixelValues has ${opts.pixelValues.length} values, pixelShape [${c}, ${h}, ${w}] needs ${c * h * w}`);
  }
  // little-endian f32 (every platform Node runs on here is little-endian; checked anyway)
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('the Python references assume a little-endian host');
  const dir = await mkdtemp(join(tmpdir(), 'py-ref-'));
  try {
    const pix = join(dir, 'pixel_values.f32');
    const out = join(dir, 'out.safetensors');
    await writeFile(pix, new Uint8Array(opts.pixelValues.buffer, opts.pixelValues.byteOffset, opts.pixelValues.byteLength));
    const { stdout } = await runPython([script, '--model', opts.model, '--pixel-values', pix, '--pixel-shape', `${c},${h},${w}`, '--out', out, ...args]);
    const { tensors, metadata } = await readRefSafetensors(out);
    if (metadata.format !== format || metadata.version !== version) {
      throw new Error(`${out}: format ${metadata.format} version ${metadata.version}, expected ${format} ${version} (${script} and pyref.ts disagree)`);
    }
    let stats: Record<string, unknown> = {};
    const last = stdout.trim().split('\n').pop();
    try {
      if (last) stats = JSON.parse(last) as Record<string, unknown>;
    } catch {
      // stats are informational only
    }
    return { tensors, metadata, stats };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
