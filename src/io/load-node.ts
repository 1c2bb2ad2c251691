/**
 * Node-only file reading for the browser-safe modules tokenizer.ts, chat.ts, image.ts and
 * image-processor.ts: they take parsed JSON / bytes; these helpers find and read the files
 * of a HF checkpoint directory and turn every missing or malformed file into a UserError.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { LmTokenizer, QformerTokenizer } from './tokenizer.ts';
import { decodeImage, type DecodeOptions, type RgbImage } from './image.ts';
import { parseImageProcessorConfig, type ImageProcessorConfig } from './image-processor.ts';

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function checkDir(dir: string): void {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such directory`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${dir}: not a directory (give the checkpoint directory)`);
}

/** The language model tokenizer of a checkpoint directory (tokenizer.json + tokenizer_config.json). */
export function loadTokenizer(dir: string): LmTokenizer {
  checkDir(dir);
  const tj = join(dir, 'tokenizer.json');
  if (!existsSync(tj)) {
    const slow = existsSync(join(dir, 'tokenizer.model')) ? ' (it has only the SentencePiece tokenizer.model)' : '';
    throw new UserError(
      `${dir}: no tokenizer.json${slow}; phaselens needs HF's fast tokenizer file. Create it with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir), or pass --input-ids`,
    );
  }
  const tc = join(dir, 'tokenizer_config.json');
  const cfg = existsSync(tc) ? readJson(tc) : {};
  return new LmTokenizer(readJson(tj), cfg, dir);
}

/**
 * The InstructBLIP Q-Former tokenizer: `dir/qformer_tokenizer/` (HF's layout) or `dir`
 * itself, from tokenizer.json, else vocab.txt.
 */
export function loadQformerTokenizer(dir: string): QformerTokenizer {
  checkDir(dir);
  const sub = join(dir, 'qformer_tokenizer');
  const d = existsSync(sub) ? sub : dir;
  const tc = join(d, 'tokenizer_config.json');
  const cfg = existsSync(tc) ? readJson(tc) : {};
  const tj = join(d, 'tokenizer.json');
  if (existsSync(tj)) return new QformerTokenizer(readJson(tj), cfg, d);
  const vt = join(d, 'vocab.txt');
  if (existsSync(vt)) return QformerTokenizer.fromVocabTxt(readFileSync(vt, 'utf8'), cfg, d);
  throw new UserError(`${dir}: no Q-Former tokenizer (expected qformer_tokenizer/tokenizer.json or vocab.txt, as in Salesforce/instructblip-*)`);
}

/**
 * The chat template of a checkpoint, looked up as HF's processor does: chat_template.jinja,
 * chat_template.json ("chat_template"), then tokenizer_config.json ("chat_template").
 * Null when there is none.
 */
export function loadChatTemplate(dir: string): string | null {
  checkDir(dir);
  const jinja = join(dir, 'chat_template.jinja');
  // Python reads the file in text mode (universal newlines): CRLF and CR become LF, which
  // matters inside string literals such as '<image>\n'.
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8').replace(/\r\n?/g, '\n');
  for (const f of ['chat_template.json', 'tokenizer_config.json']) {
    const p = join(dir, f);
    if (!existsSync(p)) continue;
    const j = readJson(p) as Record<string, unknown>;
    const t = j?.chat_template;
    if (typeof t === 'string') return t;
    if (t !== undefined && t !== null) {
      throw new UserError(`${p}: "chat_template" is not a single template string (named templates are not supported); pass --input-ids or drop --chat`);
    }
  }
  return null;
}

/** The image processor settings of a checkpoint (preprocessor_config.json). */
export function loadImageProcessorConfig(dir: string): ImageProcessorConfig {
  checkDir(dir);
  const p = join(dir, 'preprocessor_config.json');
  if (!existsSync(p)) throw new UserError(`${dir}: no preprocessor_config.json (the HF image processor settings)`);
  return parseImageProcessorConfig(readJson(p), p);
}

/** Read and decode a PNG or JPEG file to RGB (see image.ts for the checks and conversions). */
export function readImageFile(path: string, opts: Omit<DecodeOptions, 'name'> = {}): RgbImage {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) throw new UserError(`${path}: is a directory, not an image file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeImage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { ...opts, name: path });
}
