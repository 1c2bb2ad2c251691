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
import { validateCheckpoint } from '../io/validate.ts';
import { LlavaForConditionalGeneration } from './llava.ts';
import { checkpointSource, Weights } from './weights.ts';

export interface LoadedLlava {
  dir: string;
  config: LlavaConfig;
  model: LlavaForConditionalGeneration;
  tokenizer: LmTokenizer;
  chatTemplate: string | null;
  processor: ImageProcessorConfig;
  /** Weight dtypes found in the checkpoint, e.g. ['f16']. */
  weightDtypes: string[];
}

export interface LoadOptions {
  /** Convert weights to this dtype as they load (default: as stored). */
  dtype?: 'f32' | 'f16';
  onProgress?: (done: number, total: number) => void;
}

export async function loadLlava(gpu: Gpu, dir: string, opts: LoadOptions = {}): Promise<LoadedLlava> {
  const { dtype, onProgress } = opts;
  const report = await validateCheckpoint(nodeDirectory(dir));
  const config = report.config;
  if (config.model_type !== 'llava') {
    await report.checkpoint.close();
    throw new UserError(`${dir}: model_type "${config.model_type}" is not supported by this command yet (supported: llava)`);
  }
  const tokenizer = loadTokenizer(dir);
  const chatTemplate = loadChatTemplate(dir);
  const processor = loadImageProcessorConfig(dir);
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
    const model = await LlavaForConditionalGeneration.load(new Weights(gpu, counted), config);
    const weightDtypes = dtype ? [dtype] : [...new Set([...ckpt.tensors.values()].map((t) => t.dtype.toLowerCase()))];
    return { dir, config, model, tokenizer, chatTemplate, processor, weightDtypes };
  } finally {
    await ckpt.close();
  }
}
