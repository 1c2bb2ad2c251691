/**
 * What every family's `VlmFiles` is built from: a validated checkpoint folder with its
 * tokenizer and image processor read (no weight touched), and the helpers both families'
 * `prepare` and `load` share — image preprocessing checked against the vision tower,
 * prompt ids checked against the vocabulary and the context, the position groups, and
 * the counted, streamed weight upload.
 */
import type { Gpu } from '../gpu/context.ts';
import { UserError } from '../errors.ts';
import type { DirectorySource } from '../io/byte-source.ts';
import type { LmConfig, ModelConfig } from '../io/config.ts';
import type { RgbImage } from '../io/image.ts';
import { preprocessImage, type ImageProcessorConfig, type PixelValues, type PreprocessOptions } from '../io/image-processor.ts';
import { parseInputIds, type EncodeOptions, type LmTokenizer } from '../io/tokenizer.ts';
import type { CheckpointReport } from '../io/validate.ts';
import { checkpointSource, Weights } from './weights.ts';
import { setMatmulPrecision } from '../ops/precision.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import type { Box, Capabilities, DecoderLm, LoadOptions, ModelInfo, PositionGroups, Vlm, VlmFiles, VlmForwardOptions, VlmInput } from './vlm.ts';

export interface OpenedCheckpoint {
  dir: DirectorySource;
  /** Validated; its checkpoint stays open until the weights are loaded. */
  report: CheckpointReport;
  /** What its family's entry in the table (models/registry.ts) says of it. */
  entry: { modelType: string; capabilities: Capabilities; dumpPoints(config: ModelConfig): [string, string][] };
  tokenizer: LmTokenizer | null;
  /** The error a prompt gets when there is no tokenizer. */
  noTokenizer: string;
  processor: ImageProcessorConfig;
}

/** `pixel_values` of an image, checked against the size the vision tower was built for. */
export function pixelValues(c: OpenedCheckpoint, image: RgbImage, size: number, opts: PreprocessOptions = {}): PixelValues {
  const px = preprocessImage(image, c.processor, opts);
  const [, h, w] = px.shape;
  if (h !== size || w !== size) throw new UserError(`${c.processor.source ?? c.dir.name}: the image processor makes ${h}×${w} images but the vision tower expects ${size}×${size}`);
  return px;
}

/** The tokenizer, or the error that names the missing files and `--input-ids`. */
export function needTokenizer(c: OpenedCheckpoint): LmTokenizer {
  if (!c.tokenizer) throw new UserError(c.noTokenizer);
  return c.tokenizer;
}

/** `--input-ids` parsed against the LM's embedding size. */
export function lmInputIds(s: string, lm: LmConfig): number[] {
  return parseInputIds(s, lm.vocab_size);
}

export function checkContext(ids: readonly number[], lm: LmConfig, what = 'the prompt'): void {
  const max = lm.max_position_embeddings;
  if (ids.length > max) throw new UserError(`${what} is ${ids.length} tokens with the image placed, longer than the model's max_position_embeddings = ${max}`);
}

/**
 * The groups of a sequence whose visual tokens are `image`: text = every other position;
 * BOS = the first text position when it holds `bosId`.
 */
export function positionGroups(
  ids: readonly number[],
  image: [number, number],
  bosId: number | null,
  extra: Partial<Pick<PositionGroups, 'question' | 'grids' | 'newlines' | 'objectBox' | 'imageStart' | 'imageEnd'>> = {},
): PositionGroups {
  const text = ids.map((_, i) => i).filter((i) => i < image[0] || i >= image[1]);
  const first = text[0];
  const bos = bosId !== null && first !== undefined && ids[first] === bosId ? first : null;
  const grids = extra.grids ?? [];
  const grid = grids.length ? { rows: grids[0].rows, cols: grids[0].cols, first: grids[0].first } : null;
  return { image, text, bos, last: ids.length - 1, question: extra.question ?? null, grid, grids, newlines: extra.newlines ?? [], objectBox: extra.objectBox ?? null, imageStart: extra.imageStart ?? null, imageEnd: extra.imageEnd ?? null };
}

/**
 * `--object-box` against the image: a UserError when it is not inside the image or empty,
 * or when the family has no patches to map it onto.
 */
export function checkObjectBox(box: Box | undefined, image: RgbImage | undefined, hasGrid: boolean): Box | null {
  if (!box) return null;
  if (!hasGrid) throw new UserError('--object-box / a data set box needs a model whose visual tokens are image patches (LLaVA, LLaVA-NeXT, Chameleon); this one has none');
  if (!image) throw new UserError('--object-box needs an image');
  const [x0, y0, x1, y1] = box;
  if (!(x1 > x0 && y1 > y0)) throw new UserError(`object box ${box.join(',')} is empty (x1 must exceed x0 and y1 exceed y0)`);
  if (x0 < 0 || y0 < 0 || x1 > image.width || y1 > image.height) throw new UserError(`object box ${box.join(',')} is outside the ${image.width}×${image.height} image (x 0..${image.width}, y 0..${image.height})`);
  return box;
}

/**
 * The tokens of `text.slice(from, to)` within `tok.encode(text)`, as [start, end): the
 * common prefixes of the encoding with the encodings of the text cut at `from` and `to`
 * (SentencePiece may merge across a cut; the common prefix stays on the safe side).
 */
export function textSpan(tok: LmTokenizer, text: string, from: number, to: number, opts: EncodeOptions = {}): [number, number] {
  const enc = (t: string) => tok.encode(t, opts);
  const full = enc(text);
  const lcp = (a: number[]) => {
    let i = 0;
    while (i < a.length && i < full.length && a[i] === full[i]) i++;
    return i;
  };
  return [lcp(enc(text.slice(0, from))), lcp(enc(text.slice(0, to)))];
}

/** Id text for generated tokens, through the tokenizer when there is one. */
export function decodeIds(tokenizer: LmTokenizer | null, ids: readonly number[]): string {
  if (!tokenizer) return `[ids ${ids.join(',')}]`;
  return tokenizer.decode(ids.filter((i) => i < tokenizer.vocabSize), { skipSpecialTokens: true }).trim();
}

/**
 * Streams the checkpoint's weights to the GPU through `build` (the family's module tree),
 * one tensor at a time, counting progress; closes the checkpoint whatever happens.
 */
export async function streamWeights<T>(gpu: Gpu, c: OpenedCheckpoint, opts: LoadOptions, build: (w: Weights) => Promise<T>): Promise<{ model: T; weightDtypes: string[] }> {
  const ckpt = c.report.checkpoint;
  const total = ckpt.tensors.size;
  let done = 0;
  const source = checkpointSource(ckpt, opts.dtype);
  const counted = {
    has: source.has,
    load: async (...a: Parameters<typeof source.load>) => {
      const r = await source.load(...a);
      opts.onProgress?.(++done, total);
      return r;
    },
  };
  try {
    const model = await build(new Weights(gpu, counted));
    const weightDtypes = opts.dtype ? [opts.dtype] : [...new Set([...ckpt.tensors.values()].map((t) => t.dtype.toLowerCase()))];
    return { model, weightDtypes };
  } finally {
    await ckpt.close();
  }
}

export const PRECISION_F16_DTYPE = '--precision f16 computes with f16 weights (HF model.half()); leave --dtype out or make it f16';

/** What a family's composition class gives the interface once its weights are loaded. */
export interface Composition {
  hooks: HookPoints;
  languageModel: DecoderLm;
  forward(gpu: Gpu, x: VlmInput, opts?: VlmForwardOptions): Tensor;
}

/** What a family's file fills in of ModelInfo (the table gives the rest). */
export type FamilyInfo = Omit<ModelInfo, 'family' | 'capabilities'>;

/** A family's VlmFiles: its ModelInfo, and `load` building its composition from the streamed weights. */
export function vlmFiles(c: OpenedCheckpoint, familyInfo: FamilyInfo, build: (w: Weights) => Promise<Composition>): VlmFiles {
  const info: ModelInfo = { family: c.entry.modelType, capabilities: c.entry.capabilities, ...familyInfo };
  const dumpPoints = c.entry.dumpPoints(c.report.config);
  return {
    ...info,
    close: () => c.report.checkpoint.close(),
    async load(gpu, opts = {}): Promise<Vlm> {
      const precision = opts.precision ?? 'f32';
      if (precision === 'f16') {
        if (!gpu.features.f16) throw new UserError(`precision f16 needs the shader-f16 feature, which this GPU (${gpu.adapterName}) does not offer; run at the default precision f32`);
        if (opts.dtype === 'f32') throw new UserError(PRECISION_F16_DTYPE);
      }
      const { model, weightDtypes } = await streamWeights(gpu, c, { ...opts, dtype: opts.dtype ?? (precision === 'f16' ? 'f16' : undefined) }, build);
      setMatmulPrecision(gpu, precision);
      return { ...info, hooks: model.hooks, languageModel: model.languageModel, weightDtypes, precision, forward: (g, x, o) => model.forward(g, x, o), dumpPoints };
    },
  };
}
