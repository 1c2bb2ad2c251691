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
import type { LmConfig, ModelConfig } from '../io/config.ts';
import type { RgbImage } from '../io/image.ts';
import type { ImageProcessorConfig, PixelValues, PreprocessOptions } from '../io/image-processor.ts';
import type { LmTokenizer } from '../io/tokenizer.ts';
import type { Precision } from '../ops/precision.ts';

/** A family's name: its config.json `model_type`, the key of its entry in models/registry.ts. */
export type Family = string;

/**
 * What a family can do, asked for instead of its name (models/registry.ts sets them per
 * family; every Vlm carries its family's).
 */
export interface Capabilities {
  /** The checkpoint has a chat template: `--chat` wraps the prompt in it. */
  chatTemplate: boolean;
  /** The visual tokens are image patches on a grid (PositionGroups.grid): `image[r0:r1,c0:c1]`, the hover view. */
  patchGrid: boolean;
  /** The image goes in as a base view plus high-resolution tiles (LLaVA-NeXT anyres). */
  tiles: boolean;
  /** A Q-Former reads the instruction too (`--qformer-input-ids`, a second tokenizer). */
  qformer: boolean;
}

/** Per-layer K/V [maxSeq, n_kv_heads · d_head] kept on the GPU between calls (DecoderLm.createCache). */
export interface KvCache {
  readonly k: Tensor[];
  readonly v: Tensor[];
  readonly maxSeq: number;
  /** Positions filled so far (set by forward). */
  length: number;
}

export interface DecoderForwardOptions {
  /** Absolute position of the first input row (decoding with a KV cache). */
  pos0?: number;
  /** Keep K/V here; positions before pos0 are read from it. */
  cache?: KvCache;
  /**
   * Start at this decoder layer: the input is then the residual stream entering it
   * (`lm.blocks.{fromLayer}.resid_pre`), e.g. cached from an earlier run, so an
   * intervention in later layers re-runs only those. With a KV cache holding the earlier
   * positions of every layer (and `pos0`), only the rows from pos0 on are re-run.
   */
  fromLayer?: number;
  /** Additive pre-softmax attention mask [S, S_kv] for a decoder layer, or none (attention knockout). */
  mask?: (layer: number) => Tensor | undefined;
}

/** One column block of the logits [S, cols]: vocabulary ids colStart… (lm_head split over storage bindings). */
export interface LogitsBlock {
  tensor: Tensor;
  colStart: number;
}

/**
 * What norm-based attention (Kobayashi et al. 2020) needs of one decoder layer besides
 * the hooks `lm.blocks.{l}.attn.q|k|v` (q, k after the position encoding; v = x W_V + b_V,
 * [pos, n_kv_heads, d_head]): f^h(x) = v^h W_O^h.
 */
export interface NormAttentionLayer {
  /** o_proj weight [d_model, n_heads · d_head] (HF Linear layout): head h feeds columns h·d_head … (h+1)·d_head − 1. */
  oProj: Tensor;
  /** A query attends to at most this many keys back (itself included; Mistral's sliding window), or null for full causal attention. */
  window: number | null;
}

/**
 * The language model of every family: a decoder-only transformer that probes,
 * interventions, generation and analysis drive through this interface alone (LLaMA is
 * models/llama.ts). Hook names are common (src/hooks/names.ts): `lm.embed`,
 * `lm.blocks.{l}.{resid_pre, ln1.normalized, attn.q|k|v|z, resid_mid, resid_post}`,
 * `lm.ln_final.normalized`.
 */
export interface DecoderLm {
  /** Sizes and special ids, HF names. */
  readonly cfg: LmConfig;
  readonly hooks: HookPoints;
  /** Token embeddings [n, d_model] of ids [n] (i32). */
  embed(gpu: Gpu, ids: Tensor): Tensor;
  /**
   * Runs the decoder on input embeddings [S, d_model] (HF `inputs_embeds`); returns the
   * final-normed hidden states [S, d_model] (the un-normed last layer is the hook
   * `lm.blocks.{L-1}.resid_post`).
   */
  forward(gpu: Gpu, inputsEmbeds: Tensor, opts?: DecoderForwardOptions): Tensor;
  /** The final norm alone (LogitLens on an intermediate layer). */
  finalNorm(gpu: Gpu, x: Tensor): Tensor;
  /** lm_head on final-normed rows: logits [S, vocab] as column blocks. */
  logits(gpu: Gpu, hidden: Tensor): LogitsBlock[];
  normAttention(layer: number): NormAttentionLayer;
  /** An empty K/V cache for `maxSeq` positions. */
  createCache(gpu: Gpu, maxSeq: number): KvCache;
}

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
  /** The patch grid of the visual tokens (LLaVA): the patch in row r, column c sits at first + r·cols + c (`grids[0]`). */
  grid: { rows: number; cols: number; first: number } | null;
  /**
   * Every patch grid of the image (LLaVA: one; LLaVA-NeXT: the base view, then the tiles'
   * unpadded grid, whose rows end with an image_newline position); empty without patches.
   */
  grids: PatchGrid[];
  /** The image_newline positions (LLaVA-NeXT): visual tokens that show no patch. */
  newlines: number[];
  /** Where the family's start-of-image token sits (Chameleon's `<racm3:break>`), or null when it has none. */
  imageStart: number | null;
  /** Where the family's end-of-image token sits (Chameleon's `<eoss>`, the narrow-gate study's gate), or null when it has none. */
  imageEnd: number | null;
  /** `--object-box` / a data set's `box`, checked against the image: the `object` group. */
  objectBox: Box | null;
}

/** [x0, y0, x1, y1) in pixels of the original image. */
export type Box = [number, number, number, number];

/**
 * One view's patches: the patch in row r, column c sits at first + r·stride + c (stride =
 * cols, or cols + 1 where an image_newline ends each row) and shows the rectangle of `box`
 * (the part of the original image the grid covers) in row r, column c of a rows × cols split.
 */
export interface PatchGrid {
  /** 'image' (LLaVA-1.5's one view), 'base' or 'tiles' (LLaVA-NeXT). */
  view: 'image' | 'base' | 'tiles';
  rows: number;
  cols: number;
  first: number;
  stride: number;
  box: Box;
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

export type VlmForwardOptions = Pick<DecoderForwardOptions, 'cache' | 'mask'>;

export interface LoadOptions {
  /** Convert weights to this dtype as they load (default: as stored; f16 at precision f16). */
  dtype?: 'f32' | 'f16';
  /**
   * The matmuls' precision (src/ops/precision.ts; default f32). 'f16' is HF's `model.half()`:
   * the weights load as f16 and the device's matmuls round to f16; it needs shader-f16.
   */
  precision?: Precision;
  onProgress?: (done: number, total: number) => void;
}

/** What both stages share. */
export interface ModelInfo {
  family: Family;
  capabilities: Capabilities;
  /** The checkpoint folder's name or path, as outputs record it. */
  name: string;
  config: ModelConfig;
  /** The language model's config (`text_config`). */
  lm: LmConfig;
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
  languageModel: DecoderLm;
  /** Weight dtypes on the GPU, e.g. ['f16']. */
  weightDtypes: string[];
  /** The matmuls' precision it runs at (set on the device by the load). */
  precision: Precision;
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
