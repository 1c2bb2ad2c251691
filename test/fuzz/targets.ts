/**
 * What the fuzzer feeds: real files (a tiny checkpoint of each family written by
 * make-tiny, the LLaVA-1.5 chat template from the hub, COCO / Winoground / VQA
 * annotations, PNG and JPEG images), mutated (mutate.ts) and given to the same readers
 * the CLI and the page use. A case passes when the reader accepts the input or refuses it
 * with a UserError; anything else — another exception, a hang — is a finding.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import type { DataFs } from '../../src/data/data-fs.ts';
import { cocoItems } from '../../src/data/coco.ts';
import { vqaItems } from '../../src/data/vqa.ts';
import { winogroundItems } from '../../src/data/winoground.ts';
import { chatPrompt } from '../../src/io/chat.ts';
import { decodeImage } from '../../src/io/image.ts';
import { readChatTemplate, readImageProcessorConfig } from '../../src/io/model-files.ts';
import type { ByteSource, DirectorySource } from '../../src/io/byte-source.ts';
import { UserError } from '../../src/errors.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { concat, mutateBytes, mutateJson, mutateText, nastyValue, Rng } from './mutate.ts';
import { checkCheckpoint } from '../../src/models/registry.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures');

/**
 * One target: runs a case drawn from `r` and says whether the input was accepted (true)
 * or refused with a UserError (false). `save`, when given, receives the case's input
 * files before they are parsed (to reproduce a finding outside the fuzzer).
 */
export type Target = (r: Rng, save?: Save) => Promise<boolean> | boolean;
export type Save = (name: string, bytes: Uint8Array) => void;

const enc = new TextEncoder();

/**
 * A checkpoint folder in memory, file name → the file's bytes in parts. A mutated
 * safetensors file is [its new header, the original data area], so a case copies a few
 * kilobytes, not the 20 MB of weights.
 */
type Folder = Map<string, Uint8Array[]>;

const size = (parts: readonly Uint8Array[]) => parts.reduce((s, p) => s + p.length, 0);

/** The file of these parts, read range by range across them (the ByteSource contract of src/io/byte-source.ts). */
function partsSource(name: string, parts: readonly Uint8Array[]): ByteSource {
  const total = size(parts);
  return {
    name,
    size: total,
    async read(offset, length, into) {
      if (offset < 0 || length < 0 || offset + length > total) throw new UserError(`${name}: read of ${length} bytes at ${offset} runs past the end of the file (${total} bytes)`);
      const out = into ?? new Uint8Array(length);
      let at = 0;
      for (const p of parts) {
        const lo = Math.max(offset, at);
        const hi = Math.min(offset + length, at + p.length);
        if (lo < hi) out.set(p.subarray(lo - at, hi - at), lo - offset);
        at += p.length;
      }
      return out.subarray(0, length);
    },
    close: async () => {},
  };
}

function folderDirectory(files: Folder): DirectorySource {
  return {
    name: 'ckpt',
    open: async (f) => (files.has(f) ? partsSource(`ckpt/${f}`, files.get(f)!) : undefined),
    readText: async (f) => (files.has(f) ? new TextDecoder().decode(concat(...files.get(f)!)) : undefined),
  };
}

async function tinyFolder(arch: 'llava' | 'instructblip'): Promise<Folder> {
  const dir = mkdtempSync(join(tmpdir(), `phaselens-fuzz-${arch}-`));
  try {
    await makeTiny({ arch, seed: 0, out: dir });
    const files: Folder = new Map();
    // the tokenizers are third-party parsers (@huggingface/tokenizers) and slow to build: left out
    for (const f of readdirSync(dir)) if (/\.(json|safetensors|jinja)$/.test(f) && f !== 'tokenizer.json') files.set(f, [new Uint8Array(readFileSync(join(dir, f)))]);
    return files;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A safetensors file split into its header object and its data area. */
function splitSafetensors(b: Uint8Array): { header: unknown; data: Uint8Array } {
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))), data: b.subarray(8 + n) };
}

/** The safetensors file with its header mutated: fields, JSON syntax, the length prefix, raw bytes, or cut short. */
function mutateSafetensors(r: Rng, file: Uint8Array): Uint8Array[] {
  const { header, data } = splitSafetensors(file);
  const op = r.int(12);
  if (op < 5) return joinSafetensors(JSON.stringify(mutateJson(r, header)), data);
  if (op < 7) return joinSafetensors(mutateText(r, JSON.stringify(header)), data);
  const text = JSON.stringify(header);
  if (op < 9) {
    const n = BigInt(enc.encode(text).length);
    const len = r.pick([0n, 1n, n - 1n, n + 1n, n + 7n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, BigInt(r.int(1 << 20))]);
    return joinSafetensors(text, data, len);
  }
  const head = file.length - data.length;
  if (op < 11) return [mutateBytes(r, file.subarray(0, head + 256), 512), data.subarray(256)];
  return [file.subarray(0, r.int(file.length + 1))];
}

function joinSafetensors(headerText: string, data: Uint8Array, length?: bigint): Uint8Array[] {
  const h = enc.encode(headerText);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  return [concat(len, h), data];
}

function mutateJsonFile(r: Rng, bytes: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  return enc.encode(r.chance(0.75) ? JSON.stringify(mutateJson(r, JSON.parse(text))) : mutateText(r, text));
}

/** config.json, preprocessor_config.json, the safetensors header, or a file removed; then the load-time checks. */
async function checkpointTarget(folders: Folder[]): Promise<Target> {
  return async (r, save) => {
    const files = new Map(r.pick(folders));
    const names = [...files.keys()];
    const first = r.chance(0.4) ? 'config.json' : r.chance(0.5) ? 'model.safetensors' : r.pick(names);
    const second = r.chance(0.2) ? r.pick(names) : first;
    for (const f of new Set([first, second])) {
      const b = files.get(f)![0];
      if (r.chance(0.03)) files.delete(f);
      else if (f.endsWith('.safetensors')) files.set(f, mutateSafetensors(r, b));
      else if (f.endsWith('.json')) files.set(f, [mutateJsonFile(r, b)]);
      else files.set(f, [enc.encode(mutateText(r, new TextDecoder().decode(b)))]);
    }
    for (const [f, parts] of files) save?.(f, concat(...parts));
    const dir = folderDirectory(files);
    const report = await checkCheckpoint(dir);
    try {
      await readImageProcessorConfig(dir);
      if (report.problems.length) return false;
      // offsets that passed the header checks must read
      const first = [...report.checkpoint.tensors.keys()][0];
      if (first !== undefined) await report.checkpoint.readTensor(first);
      return true;
    } finally {
      await report.checkpoint.close();
    }
  };
}

/** The chat template: the .jinja text, or the JSON files that may carry it (as make-tiny writes them); then a prompt rendered with it. */
function chatTarget(llava: Folder): Target {
  const jinja = readFileSync(join(FIXTURES, 'llava-chat-template/chat_template.jinja'), 'utf8');
  const asJson = llava.get('chat_template.json')![0];
  const tokConfig = llava.get('tokenizer_config.json')![0];
  return async (r, save) => {
    const files: Folder = new Map();
    const op = r.int(3);
    if (op === 0) files.set('chat_template.jinja', [enc.encode(r.chance(0.9) ? mutateText(r, jinja) : jinja.replace(/\n/g, r.pick(['\r\n', '\r', ' '])))]);
    else if (op === 1) files.set('chat_template.json', [mutateJsonFile(r, asJson)]);
    else files.set('tokenizer_config.json', [mutateJsonFile(r, tokConfig)]);
    for (const [f, parts] of files) save?.(f, concat(...parts));
    const template = await readChatTemplate(folderDirectory(files));
    chatPrompt(template, String(nastyValue(r)), { source: 'ckpt', image: r.chance(0.8) });
    return true;
  };
}

/** A data set in memory: its index file and an images folder holding `images`. */
function memoryFs(files: Map<string, string>, images: readonly string[]): DataFs {
  const has = (p: string) => files.has(p) || images.some((i) => `img/${i}` === p);
  return {
    readText: (p) => {
      const t = files.get(p);
      if (t === undefined) throw new Error(`fuzz: no file ${p}`);
      return t;
    },
    list: (d) => (d === 'img' ? [...images] : []),
    isFile: has,
    exists: (p) => has(p) || p === 'img',
    join: (d, n) => `${d}/${n}`,
    resolve: (p) => p,
  };
}

/** COCO captions JSON, Winoground JSONL and VQA JSONL, mutated field by field or as text. */
function dataTarget(): Target {
  const coco = readFileSync(join(FIXTURES, 'coco_mini/annotations/captions_val2017.json'), 'utf8');
  const cocoImages = (JSON.parse(coco).images as { file_name: string }[]).map((i) => i.file_name);
  const wino = [0, 1, 2].map((id) => ({ id, image_0: `ex_${id}_img_0`, image_1: `ex_${id}_img_1`, caption_0: `a red circle and a blue square ${id}`, caption_1: `a blue circle and a red square ${id}`, tag: 'Object', secondary_tag: '', num_main_preds: 1, collapsed_tag: 'Object' }));
  const vqa = cocoImages.slice(0, 3).map((image, i) => ({ image, question: `How many cats are there? ${i}`, answers: ['2', 'two'] }));
  const lines = (r: Rng, rows: unknown[]) => {
    const out = rows.map((x) => JSON.stringify(x));
    const i = r.int(out.length);
    out[i] = r.chance(0.7) ? JSON.stringify(mutateJson(r, rows[i])) : mutateText(r, out[i]);
    if (r.chance(0.1)) out.splice(r.int(out.length), 0, r.pick(['', '   ', '[]', 'null', '{']));
    return out.join(r.chance(0.9) ? '\n' : '\r\n');
  };
  return (r, save) => {
    const kind = r.int(3);
    if (kind === 0) {
      const text = r.chance(0.75) ? JSON.stringify(mutateJson(r, JSON.parse(coco))) : mutateText(r, coco);
      save?.('ann.json', enc.encode(text));
      cocoItems(memoryFs(new Map([['ann.json', text]]), cocoImages), 'ann.json', 'img');
    } else if (kind === 1) {
      const images = wino.flatMap((w) => [`${w.image_0}.png`, `${w.image_1}.png`]);
      const text = lines(r, wino);
      save?.('ex.jsonl', enc.encode(text));
      winogroundItems(memoryFs(new Map([['ex.jsonl', text]]), images), 'ex.jsonl', 'img');
    } else {
      const text = lines(r, vqa);
      save?.('q.jsonl', enc.encode(text));
      vqaItems(memoryFs(new Map([['q.jsonl', text]]), cocoImages), 'q.jsonl', 'img');
    }
    return true;
  };
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with IHDR fields (size, depth, colour type) rewritten and its CRC fixed, so decoding goes past the CRC check. */
function editIhdr(r: Rng, png: Uint8Array): Uint8Array {
  const out = png.slice();
  const v = new DataView(out.buffer);
  const field = r.int(4);
  if (field < 2) v.setUint32(16 + 4 * field, r.pick([0, 1, 2, 31, 33, 40000, 65535, 2 ** 31, 2 ** 32 - 1, r.int(100)]));
  else out[24 + field - 2] = r.pick([0, 1, 2, 3, 4, 6, 8, 16, 255, r.int(256)]);
  v.setUint32(29, crc32(out.subarray(12, 29)));
  return out;
}

/** PNG (RGB, RGBA, grey 16-bit) and JPEG images, mutated byte by byte or in their headers. */
function imageTarget(): Target {
  const w = 13;
  const h = 9;
  const pixels = (c: number) => Uint8Array.from({ length: w * h * c }, (_, i) => (i * 37) % 256);
  const pngs = [
    encodePng({ width: w, height: h, data: pixels(3), channels: 3, depth: 8 }),
    encodePng({ width: w, height: h, data: pixels(4), channels: 4, depth: 8 }),
    encodePng({ width: w, height: h, data: new Uint16Array(w * h).map((_, i) => i * 499), channels: 1, depth: 16 }),
  ];
  const jpg = jpeg.encode({ width: w, height: h, data: pixels(4) }, 80).data;
  const photo = new Uint8Array(readFileSync(join(FIXTURES, 'coco_mini/val2017/000000000802.jpg')).subarray(0, 4096));
  return (r, save) => {
    const kind = r.chance(1 / 16) ? 2 : r.pick([0, 1, 3]);
    let bytes: Uint8Array;
    if (kind === 0) bytes = r.chance(0.3) ? editIhdr(r, r.pick(pngs)) : mutateBytes(r, r.pick(pngs), 64);
    else if (kind === 1) bytes = mutateBytes(r, jpg, 640);
    else if (kind === 2) bytes = mutateBytes(r, photo, 1024); // a real camera JPEG's headers, cut short
    else bytes = r.pick([...pngs, jpg]);
    save?.('image', bytes);
    decodeImage(bytes, { name: 'fuzz' });
    return true;
  };
}

/** Builds every target (writes two tiny checkpoints to a temp folder and reads them back). */
export async function makeTargets(): Promise<Record<string, Target>> {
  const folders = [await tinyFolder('llava'), await tinyFolder('instructblip')];
  return {
    checkpoint: await checkpointTarget(folders),
    chat_template: chatTarget(folders[0]),
    data_sets: dataTarget(),
    images: imageTarget(),
  };
}
