/**
 * The files around the weights, in each form transformers 4 and 5 write them (make-tiny
 * `--layout hub` and `--layout transformers5` folders, then edited): image-processor
 * settings, chat template, BOS/EOS handling, the Q-Former tokenizer, config spellings.
 * What transformers itself reads from its own folders: hf-saved.test.ts.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { recogniseChatTemplate } from '../../src/io/chat.ts';
import { readChatTemplate, readImageProcessorConfig, readQformerTokenizer, readTokenizer } from '../../src/io/model-files.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { makeTiny, tinyConfigJson, type FolderLayout, type TinyArch } from '../../weights-tools/make-tiny.ts';
import { parseConfig } from '../../src/models/registry.ts';

const root = mkdtempSync(join(tmpdir(), 'phaselens-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dirOf = (arch: TinyArch, layout: FolderLayout) => join(root, `${arch}-${layout}`);
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const writeJson = (path: string, v: unknown) => writeFileSync(path, JSON.stringify(v));

/** A copy of a generated folder to edit. */
let copies = 0;
function copyOf(arch: TinyArch, layout: FolderLayout): string {
  const d = join(root, `copy-${copies++}`);
  cpSync(dirOf(arch, layout), d, { recursive: true });
  return d;
}

beforeAll(async () => {
  for (const arch of ['llava', 'instructblip'] as const) {
    for (const layout of ['hub', 'transformers5'] as const) await makeTiny({ arch, layout, out: dirOf(arch, layout) });
  }
}, 120_000);

const PROMPT = 'USER: <image>\nWhat is this? ASSISTANT:';

describe('the two folder formats', () => {
  it('transformers5 writes what transformers 5 writes, and not the older files', () => {
    const d = dirOf('llava', 'transformers5');
    expect(() => readFileSync(join(d, 'preprocessor_config.json'))).toThrow();
    expect(() => readFileSync(join(d, 'chat_template.json'))).toThrow();
    expect(json(join(d, 'processor_config.json')).image_processor.image_processor_type).toBe('CLIPImageProcessor');
    const tc = json(join(d, 'tokenizer_config.json'));
    expect([tc.tokenizer_class, tc.add_bos_token, tc.chat_template]).toEqual(['TokenizersBackend', undefined, undefined]);
    const c = json(join(d, 'config.json'));
    expect([c.dtype, c.torch_dtype, c.text_config.rope_parameters, c.text_config.rope_theta, c.text_config.head_dim]).toEqual(['float32', undefined, { rope_theta: 10000, rope_type: 'default' }, undefined, 16]);
    expect(readFileSync(join(dirOf('instructblip', 'transformers5'), 'qformer_tokenizer/tokenizer.json')).length).toBeGreaterThan(0);
    expect(() => readFileSync(join(dirOf('instructblip', 'transformers5'), 'qformer_tokenizer/vocab.txt'))).toThrow();
  });

  it.each(['llava', 'instructblip'] as const)('%s: both config spellings parse to the same config', (arch) => {
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const hub = parseConfig(JSON.stringify(tinyConfigJson(arch, dtype, true, 'hub')));
      const t5 = parseConfig(JSON.stringify(tinyConfigJson(arch, dtype, true, 'transformers5')));
      expect(t5).toEqual(hub);
      expect(t5.dtype).toBe({ f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[dtype]);
    }
  });
});

describe('image processor settings', () => {
  it.each(['llava', 'instructblip'] as const)('%s: the same from preprocessor_config.json and from processor_config.json "image_processor"', async (arch) => {
    const hub = await readImageProcessorConfig(nodeDirectory(dirOf(arch, 'hub')));
    const t5 = await readImageProcessorConfig(nodeDirectory(dirOf(arch, 'transformers5')));
    expect(hub.source).toMatch(/preprocessor_config\.json$/);
    expect(t5.source).toMatch(/processor_config\.json "image_processor"$/);
    expect({ ...t5, source: '' }).toEqual({ ...hub, source: '' });
  });

  it('the nested settings win over a preprocessor_config.json, as in transformers 5', async () => {
    const d = copyOf('llava', 'transformers5');
    const nested = json(join(d, 'processor_config.json')).image_processor;
    writeJson(join(d, 'preprocessor_config.json'), { ...nested, size: { shortest_edge: 99 } });
    expect((await readImageProcessorConfig(nodeDirectory(d))).size).toEqual({ shortestEdge: 42 });
    const p = json(join(d, 'processor_config.json'));
    delete p.image_processor;
    writeJson(join(d, 'processor_config.json'), p);
    expect((await readImageProcessorConfig(nodeDirectory(d))).size).toEqual({ shortestEdge: 99 });
  });

  it('neither file: a UserError naming both', async () => {
    const d = copyOf('llava', 'transformers5');
    unlinkSync(join(d, 'processor_config.json'));
    const e = await readImageProcessorConfig(nodeDirectory(d)).catch((x) => x);
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toMatch(/no preprocessor_config\.json, and no "image_processor" in a processor_config\.json/);
  });
});

describe('chat template', () => {
  it('the same template from chat_template.jinja, chat_template.json and tokenizer_config.json', async () => {
    const jinja = await readChatTemplate(nodeDirectory(dirOf('llava', 'transformers5')));
    const fromJson = await readChatTemplate(nodeDirectory(dirOf('llava', 'hub')));
    const d = copyOf('llava', 'hub');
    unlinkSync(join(d, 'chat_template.json'));
    writeJson(join(d, 'tokenizer_config.json'), { ...json(join(d, 'tokenizer_config.json')), chat_template: fromJson });
    const fromTokenizerConfig = await readChatTemplate(nodeDirectory(d));
    expect(jinja).toBe(fromJson);
    expect(fromTokenizerConfig).toBe(fromJson);
    expect(recogniseChatTemplate(jinja, 'x')).toBe('llava-1.5');
  });

  it('chat_template.jinja comes first', async () => {
    const d = copyOf('llava', 'hub');
    writeFileSync(join(d, 'chat_template.jinja'), '{{ messages }}');
    expect(await readChatTemplate(nodeDirectory(d))).toBe('{{ messages }}');
  });
});

describe('BOS / EOS', () => {
  const ids = async (d: string) => (await readTokenizer(nodeDirectory(d)))!.encode(PROMPT);

  it("tokenizer_config.json's add_bos_token and bos_token decide when present (transformers 4)", async () => {
    expect((await ids(dirOf('llava', 'hub')))[0]).toBe(1);
    expect((await ids(dirOf('instructblip', 'hub')))[0]).toBe(2); // bos_token </s>, as Salesforce's folder
    const d = copyOf('llava', 'hub');
    writeJson(join(d, 'tokenizer_config.json'), { ...json(join(d, 'tokenizer_config.json')), add_bos_token: false, add_eos_token: true });
    const off = await ids(d);
    expect([off[0], off.at(-1)]).toEqual([3148, 2]);
  });

  it("without them, tokenizer.json's post-processor decides (transformers 5)", async () => {
    const hub = await ids(dirOf('llava', 'hub'));
    expect(await ids(dirOf('llava', 'transformers5'))).toEqual(hub);
    // InstructBLIP's bos_token </s> no longer matters: the post-processor adds <s>
    const t5 = await readTokenizer(nodeDirectory(dirOf('instructblip', 'transformers5')));
    expect(t5!.encode(PROMPT)).toEqual(hub);
    expect(t5!.bosId).toBe(1);

    const d = copyOf('llava', 'transformers5');
    const tj = json(join(d, 'tokenizer.json'));
    tj.post_processor.single.push({ SpecialToken: { id: '</s>', type_id: 0 } });
    tj.post_processor.special_tokens['</s>'] = { id: '</s>', ids: [2], tokens: ['</s>'] };
    writeJson(join(d, 'tokenizer.json'), tj);
    expect(await ids(d)).toEqual([...hub, 2]);

    // a Sequence of processors (as Llama-3's ByteLevel + TemplateProcessing) is looked into
    tj.post_processor = { type: 'Sequence', processors: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }, tj.post_processor] };
    writeJson(join(d, 'tokenizer.json'), tj);
    expect(await ids(d)).toEqual([...hub, 2]);

    tj.post_processor = null;
    writeJson(join(d, 'tokenizer.json'), tj);
    expect(await ids(d)).toEqual(hub.slice(1));

    tj.post_processor = { type: 'BertProcessing', sep: ['</s>', 2], cls: ['<s>', 1] };
    writeJson(join(d, 'tokenizer.json'), tj);
    const e = await readTokenizer(nodeDirectory(d)).catch((x) => x);
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toMatch(/post_processor "BertProcessing" is not supported/);
  });
});

it('the Q-Former tokenizer reads the same from its tokenizer.json (both formats) and from vocab.txt alone', async () => {
  const q = 'What is in the picture? [DEC]';
  const encode = async (d: string) => (await readQformerTokenizer(nodeDirectory(d)))!.encodeQformer(q);
  const hub = await encode(dirOf('instructblip', 'hub'));
  expect(await encode(dirOf('instructblip', 'transformers5'))).toEqual(hub);
  const vocabOnly = copyOf('instructblip', 'hub');
  unlinkSync(join(vocabOnly, 'qformer_tokenizer/tokenizer.json'));
  expect(await encode(vocabOnly)).toEqual(hub);
  expect([hub[0], hub.at(-2), hub.at(-1)]).toEqual([101, 30522, 102]);
});
