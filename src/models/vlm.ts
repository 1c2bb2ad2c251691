/**
 * The one interface every model family implements (LLaVA, InstructBLIP). Analysis,
 * interventions, the report, bench and both front ends take these types, never a
 * family's class.
 *
 * Two stages, so bad input is refused before any weight moves:
 *   VlmFiles  the checkpoint folder opened without its weights (config, tokenizers,
 *             image processor): `prepare` turns a prompt and an image into a VlmInput
 *             with its named position groups; `load` streams the weights to the GPU.
 *   Vlm       the loaded model: `forward` runs the prefill with hooks.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import type { LlamaConfig, ModelConfig } from '../io/config.ts';
import type { RgbImage } from '../io/image.ts';
import type { ImageProcessorConfig, PixelValues, PreprocessOptions } from '../io/image-processor.ts';
import type { LmTokenizer } from '../io/tokenizer.ts';
import type { KvCache, LlamaForCausalLM } from './llama.ts';

export type Family = 'llava' | 'instructblip';

/** Positions of one prepared LM input, found by `prepare` (never assumed, e.g. "BOS is 0"). */
export interface PositionGroups {
  /** [start, end) of the visual tokens (LLaVA: the image features; InstructBLIP: the query outputs). */
  image: [number, number];
  /** Every other position, BOS included. */
  text: number[];
  /** Where BOS sits, or null when the sequence has none (or it cannot be told). */
  bos: number | null;
  /** The final position. */
  last: number;
  /** [start, end) of the user's question (the prompt text, not the template); null when ids were given. */
  question: [number, number] | null;
  /** The patch grid of the visual tokens (LLaVA): the patch in row r, column c sits at first + r·cols + c. */
  grid: { rows: number; cols: number; first: number } | null;
}

/** One prepared input: what the LM and the towers are fed. */
export interface VlmInput {
  /** LM token ids; the visual positions hold the image token. */
  ids: number[];
  /** Q-Former token ids (InstructBLIP), `[CLS] … [SEP]`. */
  qformerIds?: number[];
  pixels?: PixelValues;
  groups: PositionGroups;
}

/** A prompt as the user gives it; see README ("Commands") for how each family reads it. */
export interface PromptSpec {
  prompt?: string;
  /** Comma-separated LM ids: bypasses the tokenizer and the chat template. */
  inputIds?: string;
  /** Comma-separated Q-Former ids (InstructBLIP). */
  qformerInputIds?: string;
  chat?: boolean;
}

export interface VlmForwardOptions {
  /** Keep K/V for decoding. */
  cache?: KvCache;
  /** Additive pre-softmax attention mask [S, S] for a decoder layer, or none (attention knockout). */
  mask?: (layer: number) => Tensor | undefined;
}

export interface LoadOptions {
  /** Convert weights to this dtype as they load (default: as stored). */
  dtype?: 'f32' | 'f16';
  onProgress?: (done: number, total: number) => void;
}

/** What both stages share. */
export interface ModelInfo {
  family: Family;
  /** The checkpoint folder's name or path, as outputs record it. */
  name: string;
  config: ModelConfig;
  /** The language model's config (`text_config`). */
  lm: LlamaConfig;
  /** Null when the folder has no tokenizer.json (then only `--input-ids` works). */
  tokenizer: LmTokenizer | null;
  processor: ImageProcessorConfig;
  /** Where the visual tokens sit, in words (for reports). */
  visualTokens: string;
  /** The prompt text for a question in this family's usual form (LLaVA without --chat: `<image>\n` first). */
  promptFor(question: string, chat: boolean): string;
  /** Tokenises and validates a prompt and preprocesses the image; no GPU. UserError on bad input. */
  prepare(p: PromptSpec, image?: RgbImage, opts?: PreprocessOptions): VlmInput;
  /** Text of generated ids (ids themselves when there is no tokenizer). */
  decode(ids: readonly number[]): string;
}

export interface VlmFiles extends ModelInfo {
  /** Streams the weights to the GPU one tensor at a time, and closes the checkpoint. */
  load(gpu: Gpu, opts?: LoadOptions): Promise<Vlm>;
  /** Closes the checkpoint without loading (a command that fails after opening it). */
  close(): Promise<void>;
}

export interface Vlm extends ModelInfo {
  /** The model's one hook registry (`vision.*`, `qformer.*`, `projector.*`, `lm.*`). */
  hooks: HookPoints;
  languageModel: LlamaForCausalLM;
  /** Weight dtypes on the GPU, e.g. ['f16']. */
  weightDtypes: string[];
  /**
   * Prefill: towers, the features spliced into the LM input (hook `lm.embed`), the decoder;
   * returns the final-normed hidden states [S, d_model]. With `cache`, K/V are kept for decoding.
   */
  forward(gpu: Gpu, input: VlmInput, opts?: VlmForwardOptions): Tensor;
  /**
   * The family's part of the `phaselens dump` contract: [dump name, hook name] for every
   * tower activation (the LM's hidden states are common to all families, src/probes/dump.ts).
   */
  dumpPoints: readonly (readonly [string, string])[];
}
