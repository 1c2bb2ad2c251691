/**
 * The non-weight files of a generated checkpoint: tokenizer, chat template, image
 * processor and generation config, in the layout HF's processors save.
 *
 * Both architectures use the real llava-1.5 LLaMA tokenizer (vocab 32064, `<image>`
 * 32000, `<pad>` 32001) from weights-tools/assets; InstructBLIP's tokenizer_config names
 * `</s>` as BOS, as the Vicuna InstructBLIP checkpoints do. InstructBLIP adds the Q-Former's
 * BERT tokenizer under `qformer_tokenizer/` (where InstructBlipProcessor.save_pretrained
 * puts it), with the `[DEC]` bos token (id 30522) that Salesforce's conversion adds.
 * The image processor files are adapted to the checkpoint's image size.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ASSETS = fileURLToPath(new URL('./assets/', import.meta.url));
const LLAVA = join(ASSETS, 'llava-1.5-7b-hf');
const BERT = join(ASSETS, 'bert-base-uncased-tokenizer');

/** From OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, as in the real preprocessor configs. */
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** A plain copy (not copyFile, which would carry over read-only modes). */
async function copy(from: string, to: string): Promise<void> {
  await writeFile(to, await readFile(from));
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8'));
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value, null, 2) + '\n');
}

async function llamaTokenizer(out: string, processorClass: string, overrides: Record<string, unknown> = {}): Promise<void> {
  for (const f of ['tokenizer.json', 'special_tokens_map.json', 'added_tokens.json', 'generation_config.json']) await copy(join(LLAVA, f), join(out, f));
  const config = await readJson(join(LLAVA, 'tokenizer_config.json'));
  await writeJson(join(out, 'tokenizer_config.json'), { ...config, processor_class: processorClass, ...overrides });
}

/** LlavaProcessor files (CLIPImageProcessor at `imageSize`). */
export async function writeLlavaProcessor(out: string, imageSize: number): Promise<void> {
  await llamaTokenizer(out, 'LlavaProcessor');
  for (const f of ['chat_template.json', 'processor_config.json']) await copy(join(LLAVA, f), join(out, f));
  const pre = await readJson(join(LLAVA, 'preprocessor_config.json'));
  await writeJson(join(out, 'preprocessor_config.json'), { ...pre, crop_size: { height: imageSize, width: imageSize }, size: { shortest_edge: imageSize } });
}

/** InstructBlipProcessor files (BlipImageProcessor at `imageSize`, Q-Former tokenizer). */
export async function writeInstructBlipProcessor(out: string, imageSize: number): Promise<void> {
  // Salesforce/instructblip-vicuna-7b's tokenizer_config.json names `</s>` as BOS (and
  // UNK); its prompts therefore start with id 2, not LLaMA's `<s>` = 1
  await llamaTokenizer(out, 'InstructBlipProcessor', { bos_token: '</s>', unk_token: '</s>' });
  await writeJson(join(out, 'processor_config.json'), { processor_class: 'InstructBlipProcessor' });
  await writeJson(join(out, 'preprocessor_config.json'), {
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: CLIP_MEAN,
    image_processor_type: 'BlipImageProcessor',
    image_std: CLIP_STD,
    processor_class: 'InstructBlipProcessor',
    resample: 3,
    rescale_factor: 1 / 255,
    size: { height: imageSize, width: imageSize },
  });

  const q = join(out, 'qformer_tokenizer');
  await mkdir(q, { recursive: true });
  await copy(join(BERT, 'vocab.txt'), join(q, 'vocab.txt'));
  const dec = { id: 30522, content: '[DEC]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const tok = await readJson(join(BERT, 'tokenizer.json'));
  await writeJson(join(q, 'tokenizer.json'), { ...tok, added_tokens: [...(tok.added_tokens as object[]), dec] });
  const config = await readJson(join(BERT, 'tokenizer_config.json'));
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
