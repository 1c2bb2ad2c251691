/**
 * The non-weight files of a HF checkpoint folder — tokenizers, chat template, image
 * processor — read through a DirectorySource, so the same code serves a folder on disk
 * (source-node.ts) and one the user picked in a browser (source-blob.ts). Every missing
 * or malformed file is a UserError naming it.
 */
import { UserError } from '../errors.ts';
import type { DirectorySource } from './byte-source.ts';
import { parseImageProcessorConfig, type ImageProcessorConfig } from './image-processor.ts';
import { LmTokenizer, QformerTokenizer } from './tokenizer.ts';

/** Where HF's InstructBlipProcessor.save_pretrained puts the Q-Former tokenizer. */
export const QFORMER_DIR = 'qformer_tokenizer';

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

async function readJson(dir: DirectorySource, file: string): Promise<unknown | undefined> {
  const text = await dir.readText(file);
  return text === undefined ? undefined : parseJson(text, `${dir.name}/${file}`);
}

/** The language model's tokenizer (tokenizer.json + tokenizer_config.json), or null when the folder has no tokenizer.json. */
export async function readTokenizer(dir: DirectorySource): Promise<LmTokenizer | null> {
  const tj = await readJson(dir, 'tokenizer.json');
  if (tj === undefined) return null;
  return new LmTokenizer(tj, (await readJson(dir, 'tokenizer_config.json')) ?? {}, dir.name);
}

/** Why a folder has no usable LM tokenizer, for the error a prompt without one gets. */
export async function missingTokenizerReason(dir: DirectorySource): Promise<string> {
  const slow = (await dir.open('tokenizer.model')) ? ' (it has only the SentencePiece tokenizer.model)' : '';
  return (
    `${dir.name}: no tokenizer.json${slow}; phaselens needs HF's fast tokenizer file to turn a prompt into ids. ` +
    'Create it with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir), or pass --input-ids'
  );
}

/**
 * The InstructBLIP Q-Former tokenizer from `qformer_tokenizer/` (tokenizer.json, else
 * vocab.txt), or null when the folder has neither.
 */
export async function readQformerTokenizer(dir: DirectorySource): Promise<QformerTokenizer | null> {
  const at = (f: string) => `${QFORMER_DIR}/${f}`;
  const source = `${dir.name}/${QFORMER_DIR}`;
  const cfg = (await readJson(dir, at('tokenizer_config.json'))) ?? {};
  const tj = await readJson(dir, at('tokenizer.json'));
  if (tj !== undefined) return new QformerTokenizer(tj, cfg, source);
  const vocab = await dir.readText(at('vocab.txt'));
  return vocab === undefined ? null : QformerTokenizer.fromVocabTxt(vocab, cfg, source);
}

/**
 * The chat template, looked up as HF's processor does: chat_template.jinja,
 * chat_template.json ("chat_template"), then tokenizer_config.json ("chat_template").
 * Null when there is none.
 */
export async function readChatTemplate(dir: DirectorySource): Promise<string | null> {
  const jinja = await dir.readText('chat_template.jinja');
  // Python reads the file in text mode (universal newlines): CRLF and CR become LF, which
  // matters inside string literals such as '<image>\n'.
  if (jinja !== undefined) return jinja.replace(/\r\n?/g, '\n');
  for (const f of ['chat_template.json', 'tokenizer_config.json']) {
    const j = (await readJson(dir, f)) as Record<string, unknown> | undefined;
    const t = j?.chat_template;
    if (typeof t === 'string') return t;
    if (t !== undefined && t !== null) {
      throw new UserError(`${dir.name}/${f}: "chat_template" is not a single template string (named templates are not supported); pass --input-ids or drop --chat`);
    }
  }
  return null;
}

/**
 * The image processor settings, looked up as transformers 5 does: the `image_processor`
 * object of processor_config.json (what its save_pretrained writes), else
 * preprocessor_config.json (transformers 4 and the hub folders).
 */
export async function readImageProcessorConfig(dir: DirectorySource): Promise<ImageProcessorConfig> {
  const processor = (await readJson(dir, 'processor_config.json')) as Record<string, unknown> | undefined;
  if (processor && typeof processor === 'object' && processor.image_processor !== undefined && processor.image_processor !== null) {
    return parseImageProcessorConfig(processor.image_processor, `${dir.name}/processor_config.json "image_processor"`);
  }
  const j = await readJson(dir, 'preprocessor_config.json');
  if (j === undefined) {
    throw new UserError(`${dir.name}: no image processor settings: no preprocessor_config.json, and no "image_processor" in a processor_config.json`);
  }
  return parseImageProcessorConfig(j, `${dir.name}/preprocessor_config.json`);
}
