/**
 * The non-weight files of a generated checkpoint: tokenizer, chat template, image
 * processor and generation config, in the layout HF's processors save.
 *
 * What a family gets is read from its entry in the family table (models/registry.ts,
 * `files` and `capabilities`). Every family uses the real llava-1.5 LLaMA tokenizer
 * (vocab 32064, `<image>` 32000, `<pad>` 32001) from weights-tools/assets, with the
 * family's tokenizer_config overrides (InstructBLIP names `</s>` as BOS, as the Vicuna
 * InstructBLIP checkpoints do). A family with a Q-Former gets its BERT tokenizer under
 * `qformer_tokenizer/` (where InstructBlipProcessor.save_pretrained puts it), with the
 * `[DEC]` bos token (id 30522) that Salesforce's conversion adds. The image processor
 * files are adapted to the checkpoint's image size.
 *
 * Two formats (make-tiny's `--layout`): `hub`, the files of the published folders
 * (tokenizer_config.json with add_bos_token and added_tokens_decoder, special_tokens_map.json,
 * added_tokens.json, chat_template.json, preprocessor_config.json); and `transformers5`, the
 * files transformers 5.18's `processor.save_pretrained` writes (checked by running it):
 * tokenizer_config.json of the "TokenizersBackend" kind without add_bos_token (BOS comes
 * from tokenizer.json's post-processor), chat_template.jinja, and processor_config.json
 * with the image processor nested under "image_processor"; no preprocessor_config.json,
 * special_tokens_map.json, added_tokens.json or vocab.txt.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors.ts';
import type { ModelConfig } from '../src/io/config.ts';
import type { FamilyEntry, GeneratedFiles } from '../src/models/registry.ts';

const ASSETS = fileURLToPath(new URL('./assets/', import.meta.url));
const LLAVA = join(ASSETS, 'llava-1.5-7b-hf');
const BERT = join(ASSETS, 'bert-base-uncased-tokenizer');

/** From OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, as in the real preprocessor configs. */
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** An asset's bytes; a missing one (a bundle run without PHASELENS_ROOT) names the file. */
async function readAsset(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new UserError(`missing asset ${path}: generated checkpoints take their tokenizer and processor files from phaselens's weights-tools/assets (a bundle finds it under PHASELENS_ROOT)`);
  }
}

/** A plain copy (not copyFile, which would carry over read-only modes). */
async function copy(from: string, to: string): Promise<void> {
  await writeFile(to, await readAsset(from));
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse((await readAsset(path)).toString('utf8'));
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value, null, 2) + '\n');
}

export type ProcessorFormat = 'hub' | 'transformers5';

/** The keys transformers 5 writes in a tokenizers-backend tokenizer_config.json (no add_bos_token, no added_tokens_decoder). */
function backendTokenizerConfig(special: Record<string, unknown>, processorClass: string, tokenizerClass = 'TokenizersBackend'): Record<string, unknown> {
  return { backend: 'tokenizers', ...special, model_max_length: 1000000000000000019884624838656, processor_class: processorClass, tokenizer_class: tokenizerClass };
}

async function llamaTokenizer(out: string, processorClass: string, format: ProcessorFormat, overrides: Record<string, unknown> = {}, added: string[] = []): Promise<void> {
  const files = format === 'hub' ? ['tokenizer.json', 'special_tokens_map.json', 'added_tokens.json', 'generation_config.json'] : ['tokenizer.json', 'generation_config.json'];
  for (const f of files) await copy(join(LLAVA, f), join(out, f));
  if (added.length) {
    const tok = await readJson(join(LLAVA, 'tokenizer.json'));
    const own = tok.added_tokens as { id: number }[];
    const next = Math.max(...own.map((t) => t.id)) + 1;
    const more = added.map((content, i) => ({ id: next + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
    await writeJson(join(out, 'tokenizer.json'), { ...tok, added_tokens: [...own, ...more] });
  }
  const config = await readJson(join(LLAVA, 'tokenizer_config.json'));
  if (format === 'hub') {
    await writeJson(join(out, 'tokenizer_config.json'), { ...config, processor_class: processorClass, ...overrides });
    return;
  }
  const { bos_token, eos_token, unk_token, pad_token, image_token, clean_up_tokenization_spaces, legacy, padding_side, sep_token } = { ...config, ...overrides };
  // model_specific_special_tokens makes `<image>` a special token of the tokenizer (InstructBlipProcessor needs that)
  const special = { add_prefix_space: null, bos_token, clean_up_tokenization_spaces, eos_token, image_token, legacy, model_specific_special_tokens: { image_token }, padding_side, pad_token, unk_token, ...(sep_token ? { sep_token } : {}) };
  await writeJson(join(out, 'tokenizer_config.json'), backendTokenizerConfig(special, processorClass));
}

/** The image processor: its own preprocessor_config.json (hub) or nested in processor_config.json (transformers 5). */
async function writeImageProcessor(out: string, format: ProcessorFormat, imageProcessor: Record<string, unknown>, processor: Record<string, unknown>): Promise<void> {
  if (format === 'hub') {
    await writeJson(join(out, 'preprocessor_config.json'), imageProcessor);
    await writeJson(join(out, 'processor_config.json'), processor);
    return;
  }
  const { processor_class: _, ...nested } = imageProcessor;
  await writeJson(join(out, 'processor_config.json'), { image_processor: nested, ...processor });
}

/**
 * The image processor config of `kind` at `imageSize`: llava-1.5's CLIP one adapted, the
 * LLaVA-NeXT one (CLIP's with the config's image_grid_pinpoints), or BLIP's (InstructBLIP's).
 */
async function imageProcessorJson(kind: GeneratedFiles['imageProcessor'], config: ModelConfig, processorClass: string): Promise<Record<string, unknown>> {
  const imageSize = config.vision_config.image_size;
  if (kind === 'ChameleonImageProcessor') {
    // ChameleonImageProcessor's settings at the VQ encoder's resolution: LANCZOS, v · 0.0078 − 1
    const square = { height: imageSize, width: imageSize };
    return { crop_size: square, do_center_crop: true, do_convert_rgb: true, do_normalize: true, do_rescale: true, do_resize: true, image_mean: [1, 1, 1], image_processor_type: 'ChameleonImageProcessor', image_std: [1, 1, 1], processor_class: processorClass, resample: 1, rescale_factor: 0.0078, size: { shortest_edge: imageSize } };
  }
  if (kind === 'CLIPImageProcessor' || kind === 'LlavaNextImageProcessor') {
    const pre = await readJson(join(LLAVA, 'preprocessor_config.json'));
    const clip = { ...pre, crop_size: { height: imageSize, width: imageSize }, size: { shortest_edge: imageSize } };
    if (kind === 'CLIPImageProcessor') return clip;
    const pinpoints = (config as ModelConfig & { image_grid_pinpoints: number[][] }).image_grid_pinpoints;
    return { ...clip, do_pad: true, image_grid_pinpoints: pinpoints, image_processor_type: 'LlavaNextImageProcessor', processor_class: processorClass };
  }
  return {
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: CLIP_MEAN,
    image_processor_type: 'BlipImageProcessor',
    image_std: CLIP_STD,
    processor_class: processorClass,
    resample: 3,
    rescale_factor: 1 / 255,
    size: { height: imageSize, width: imageSize },
  };
}

/**
 * The processor files of a generated checkpoint of `entry`'s family: the LLaMA tokenizer
 * (with the family's overrides), the image processor, the chat template when the family
 * has one, the Q-Former tokenizer when it has a Q-Former.
 */
export async function writeProcessorFiles(out: string, entry: FamilyEntry, config: ModelConfig, format: ProcessorFormat = 'hub'): Promise<void> {
  const f = entry.files;
  await llamaTokenizer(out, f.processorClass, format, f.tokenizerOverrides, f.addedTokens);
  if (entry.capabilities.chatTemplate) {
    const template = (await readJson(join(LLAVA, 'chat_template.json'))).chat_template as string;
    if (format === 'hub') await copy(join(LLAVA, 'chat_template.json'), join(out, 'chat_template.json'));
    else await writeFile(join(out, 'chat_template.jinja'), template);
  }
  const processor =
    f.imageProcessor === 'BlipImageProcessor'
      ? { processor_class: f.processorClass }
      : f.imageProcessor === 'ChameleonImageProcessor'
        ? { ...f.processorConfig?.(config), processor_class: f.processorClass }
        : { ...(await readJson(join(LLAVA, 'processor_config.json'))), processor_class: f.processorClass };
  const extra = format === 'transformers5' ? (f.processorConfig?.(config) ?? {}) : {};
  await writeImageProcessor(out, format, await imageProcessorJson(f.imageProcessor, config, f.processorClass), { ...extra, ...processor });
  if (entry.capabilities.qformer) await writeQformerTokenizer(out, format);
}

/** The Q-Former's BERT tokenizer under `qformer_tokenizer/`, with the `[DEC]` bos token (id 30522) Salesforce's conversion adds. */
async function writeQformerTokenizer(out: string, format: ProcessorFormat): Promise<void> {
  const q = join(out, 'qformer_tokenizer');
  await mkdir(q, { recursive: true });
  const dec = { id: 30522, content: '[DEC]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const tok = await readJson(join(BERT, 'tokenizer.json'));
  await writeJson(join(q, 'tokenizer.json'), { ...tok, added_tokens: [...(tok.added_tokens as object[]), dec] });
  const config = await readJson(join(BERT, 'tokenizer_config.json'));
  if (format === 'transformers5') {
    const keys = ['clean_up_tokenization_spaces', 'cls_token', 'do_basic_tokenize', 'do_lower_case', 'mask_token', 'never_split', 'pad_token', 'sep_token', 'strip_accents', 'tokenize_chinese_chars', 'unk_token'];
    const special = Object.fromEntries(keys.map((k) => [k, config[k]]));
    await writeJson(join(q, 'tokenizer_config.json'), backendTokenizerConfig({ ...special, bos_token: '[DEC]' }, 'InstructBlipProcessor', 'BertTokenizer'));
    return;
  }
  await copy(join(BERT, 'vocab.txt'), join(q, 'vocab.txt'));
  const { id: _, ...decEntry } = dec;
  await writeJson(join(q, 'tokenizer_config.json'), {
    ...config,
    added_tokens_decoder: { ...(config.added_tokens_decoder as object), '30522': decEntry },
    bos_token: '[DEC]',
    truncation_side: 'left',
  });
  await writeJson(join(q, 'special_tokens_map.json'), { ...(await readJson(join(BERT, 'special_tokens_map.json'))), bos_token: '[DEC]' });
  await writeJson(join(q, 'added_tokens.json'), { '[DEC]': 30522 });
}
