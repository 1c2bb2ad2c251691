/**
 * Folders transformers itself wrote (test/io/hf_save_pretrained.py, run in the venv of
 * .ci/hf-venv.sh, cached under test/.cache/hf-saved/<hash of the script and its input>):
 * `save_pretrained` of a tiny LLaVA and InstructBLIP with their processors, and the same
 * weights under the in-memory module-tree names. phaselens must open each in its layout
 * and read the same tensors, the image-processor settings, chat template and token ids
 * transformers reads back, and config.json fields (given and defaulted) exactly as
 * transformers' own config classes resolve them.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hfPython } from '../../bench/hf.ts';
import { recogniseChatTemplate } from '../../src/io/chat.ts';
import { readChatTemplate, readImageProcessorConfig, readQformerTokenizer, readTokenizer } from '../../src/io/model-files.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { parseConfig, validateCheckpoint } from '../../src/models/registry.ts';

const ROOT = join(import.meta.dirname, '../..');
const SCRIPT = join(import.meta.dirname, 'hf_save_pretrained.py');
const PROMPT = 'USER: <image>\nWhat is in the picture? ASSISTANT:';

const realLlava = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/llava-1.5-7b-hf/config.json'), 'utf8'));
const llama = { model_type: 'llama', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, vocab_size: 32064 };
/** config.json variants resolved by transformers and by parseConfig. */
const CONFIGS: Record<string, unknown> = {
  // every default but the vocabulary (LlamaConfig's 32000 would put image_token_index 32000 outside it, which phaselens refuses)
  'llava-defaults': { model_type: 'llava', text_config: { vocab_size: 32064 } },
  'llava-real': realLlava,
  'llava-partial-vision': { model_type: 'llava', vision_config: { hidden_size: 64, num_attention_heads: 4 }, text_config: llama },
  'transformers4-spelling': { model_type: 'llava', torch_dtype: 'float16', text_config: { ...llama, rope_theta: 500000.0, rope_scaling: null } },
  'transformers5-spelling': { model_type: 'llava', dtype: 'bfloat16', text_config: { ...llama, rope_parameters: { rope_type: 'default', rope_theta: 250000.0 } } },
  'rope-parameters-win': { model_type: 'llava', text_config: { ...llama, rope_theta: 7.0, rope_parameters: { rope_type: 'default', rope_theta: 9.0 } } },
  'rope-parameters-no-theta': { model_type: 'llava', text_config: { ...llama, rope_theta: 7.0, rope_parameters: { rope_type: 'default' } } },
  'explicit-head-dim': { model_type: 'llava', text_config: { ...llama, head_dim: 32, num_key_value_heads: 2 } },
  'instructblip-minimal': { model_type: 'instructblip', text_config: { model_type: 'llama' } },
  'instructblip-partial': { model_type: 'instructblip', text_config: llama, vision_config: { hidden_size: 40, num_attention_heads: 4 }, qformer_config: { num_hidden_layers: 3 }, torch_dtype: 'float32' },
};

interface HfFolder {
  image_processor: { type: string; size: Record<string, number>; crop_size: Record<string, number> | null; resample: number; image_mean: number[]; image_std: number[]; rescale_factor: number };
  input_ids: number[];
  qformer_input_ids?: number[];
  chat_template: string | null;
}
interface HfReport {
  transformers: string;
  folders: Record<'llava' | 'instructblip', HfFolder>;
  configs: Record<string, Record<string, unknown>>;
}

let out = '';
let hf: HfReport;

beforeAll(() => {
  const input = JSON.stringify(CONFIGS);
  const key = createHash('sha256').update(readFileSync(SCRIPT)).update(input).digest('hex').slice(0, 16);
  out = join(ROOT, 'test/.cache/hf-saved', key);
  if (!existsSync(join(out, 'hf.json'))) {
    const tmp = `${out}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'configs.json'), input);
    const r = spawnSync(hfPython(), [SCRIPT, tmp, join(tmp, 'configs.json')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${SCRIPT} failed (exit ${r.status}):\n${r.stderr.slice(-3000)}`);
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
  }
  hf = JSON.parse(readFileSync(join(out, 'hf.json'), 'utf8'));
}, 900_000);

describe.each([
  ['llava', 'transformers5', 'transformers4.52'],
  ['instructblip', 'hub', 'hub'],
] as const)('%s written by transformers', (family, savedLayout, treeLayout) => {
  it(`save_pretrained opens in the ${savedLayout} layout, the module tree in ${treeLayout}, with the same tensors`, async () => {
    expect(hf.transformers).toMatch(/^5\./);
    const saved = await validateCheckpoint(nodeDirectory(join(out, family)));
    const tree = await validateCheckpoint(nodeDirectory(join(out, `${family}-module-tree`)));
    try {
      expect(saved.match.layout.id).toBe(savedLayout);
      expect(tree.match.layout.id).toBe(treeLayout);
      expect(saved.match.found.size).toBe(saved.expected.length);
      expect(tree.match.found.size).toBe(saved.expected.length);
      for (const e of saved.expected) {
        const [a, b] = [await saved.checkpoint.readTensor(e.name), await tree.checkpoint.readTensor(e.name)];
        expect(Buffer.from(a).equals(Buffer.from(b)), e.name).toBe(true);
      }
      if (family === 'llava') {
        // the two layouts really do differ on disk
        expect(saved.checkpoint.tensors.has('vision_tower.embeddings.class_embedding')).toBe(true);
        expect(tree.checkpoint.tensors.has('model.vision_tower.embeddings.class_embedding')).toBe(true);
      }
    } finally {
      await saved.checkpoint.close();
      await tree.checkpoint.close();
    }
  });

  it('image processor, tokenizers and chat template read as transformers reads them back', async () => {
    const dir = nodeDirectory(join(out, family));
    const want = hf.folders[family];
    const ip = await readImageProcessorConfig(dir);
    expect(ip.source).toMatch(/processor_config\.json "image_processor"$/); // transformers 5 writes no preprocessor_config.json
    expect(ip.processorType).toBe(want.image_processor.type.replace(/Pil$/, ''));
    const size = 'shortestEdge' in ip.size ? { shortest_edge: ip.size.shortestEdge } : ip.size;
    expect(size).toEqual(want.image_processor.size);
    if (want.image_processor.crop_size) expect(ip.cropSize).toEqual(want.image_processor.crop_size);
    expect(ip.doCenterCrop).toBe(want.image_processor.crop_size !== null);
    expect([ip.resample, ip.imageMean, ip.imageStd, ip.rescaleFactor]).toEqual([want.image_processor.resample, want.image_processor.image_mean, want.image_processor.image_std, want.image_processor.rescale_factor]);

    // no add_bos_token in tokenizer_config.json: BOS as tokenizer.json's post-processor says
    const tokenizerConfig = JSON.parse(readFileSync(join(out, family, 'tokenizer_config.json'), 'utf8'));
    expect(tokenizerConfig.add_bos_token).toBeUndefined();
    const tok = (await readTokenizer(dir))!;
    expect(tok.encode(PROMPT)).toEqual(want.input_ids);
    if (family === 'instructblip') {
      expect(tokenizerConfig.bos_token).toBe('</s>'); // yet transformers 5 prepends <s> = 1
      expect(tok.bosId).toBe(1);
      const q = (await readQformerTokenizer(dir))!;
      expect(q.encodeQformer('What is in the picture?')).toEqual(want.qformer_input_ids);
    } else {
      const template = await readChatTemplate(dir);
      expect(template).toBe(want.chat_template);
      expect(recogniseChatTemplate(template, family)).toBe('llava-1.5');
    }
  });
});

/** `ours` cut down to the keys of `theirs`, recursively, so the two can be compared whole. */
function like(ours: unknown, theirs: unknown): unknown {
  if (!theirs || typeof theirs !== 'object' || Array.isArray(theirs)) return ours;
  const o = (ours ?? {}) as Record<string, unknown>;
  return Object.fromEntries(Object.keys(theirs).map((k) => [k, like(o[k], (theirs as Record<string, unknown>)[k])]));
}

describe('config.json fields as transformers resolves them', () => {
  it.each([...Object.keys(CONFIGS), 'saved-llava', 'saved-instructblip'])('%s', (name) => {
    const want = hf.configs[name];
    expect(want.error, String(want.error)).toBeUndefined();
    const text = name.startsWith('saved-') ? readFileSync(join(out, name.slice('saved-'.length), 'config.json'), 'utf8') : JSON.stringify(CONFIGS[name]);
    const ours = parseConfig(text, name);
    expect(like(ours, want)).toEqual(want);
  });
});
