/**
 * Opens a LLaVA checkpoint folder on disk: validates it against its config before any
 * GPU allocation, then streams the weights one tensor at a time to the GPU, and loads the
 * tokenizer, chat template and image processor that ship with it.
 */
import type { Gpu } from '../gpu/context.ts';
import { UserError } from '../errors.ts';
import type { LlavaConfig } from '../io/config.ts';
import type { ImageProcessorConfig } from '../io/image-processor.ts';
import { loadChatTemplate, loadImageProcessorConfig, loadTokenizer } from '../io/load-node.ts';
import { nodeDirectory } from '../io/source-node.ts';
import type { LmTokenizer } from '../io/tokenizer.ts';
import { validateCheckpoint, type CheckpointReport } from '../io/validate.ts';
import { LlavaForConditionalGeneration } from './llava.ts';
import { checkpointSource, Weights } from './weights.ts';

/** Everything in a checkpoint folder but the weights: enough to validate a run's inputs. */
export interface LlavaFiles {
  dir: string;
  config: LlavaConfig;
  tokenizer: LmTokenizer;
  chatTemplate: string | null;
  processor: ImageProcessorConfig;
  /** The validated checkpoint, open until its weights are loaded. */
  report: CheckpointReport;
}

export interface LoadedLlava extends Omit<LlavaFiles, 'report'> {
  model: LlavaForConditionalGeneration;
  /** Weight dtypes on the GPU, e.g. ['f16']. */
  weightDtypes: string[];
}

export interface LoadOptions {
  /** Convert weights to this dtype as they load (default: as stored). */
  dtype?: 'f32' | 'f16';
  onProgress?: (done: number, total: number) => void;
}

/** Validates the folder against its config (no GPU allocation) and reads tokenizer, template and processor. */
export async function openLlava(dir: string): Promise<LlavaFiles> {
  const report = await validateCheckpoint(nodeDirectory(dir));
  const config = report.config;
  if (config.model_type !== 'llava') {
    await report.checkpoint.close();
    throw new UserError(`${dir}: model_type "${config.model_type}" is not supported by this command yet (supported: llava)`);
  }
  return { dir, config, tokenizer: loadTokenizer(dir), chatTemplate: loadChatTemplate(dir), processor: loadImageProcessorConfig(dir), report };
}

/** Streams the weights to the GPU, one tensor at a time, and closes the checkpoint. */
export async function loadLlava(gpu: Gpu, from: string | LlavaFiles, opts: LoadOptions = {}): Promise<LoadedLlava> {
  const { dtype, onProgress } = opts;
  const { report, ...files } = typeof from === 'string' ? await openLlava(from) : from;
  const ckpt = report.checkpoint;
  const total = ckpt.tensors.size;
  let done = 0;
  const source = checkpointSource(ckpt, dtype);
  const counted = {
    has: source.has,
    load: async (...a: Parameters<typeof source.load>) => {
      const r = await source.load(...a);
      onProgress?.(++done, total);
      return r;
    },
  };
  try {
    const model = await LlavaForConditionalGeneration.load(new Weights(gpu, counted), files.config);
    const weightDtypes = dtype ? [dtype] : [...new Set([...ckpt.tensors.values()].map((t) => t.dtype.toLowerCase()))];
    return { ...files, model, weightDtypes };
  } finally {
    await ckpt.close();
  }
}
