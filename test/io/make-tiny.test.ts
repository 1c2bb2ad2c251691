/**
 * make-tiny round trips (both architectures, f32 / f16 / bf16, single file and
 * sharded): the folder must validate against its own config, be deterministic in the
 * seed, carry the tokenizer and processor files HF's processors expect, and be small.
 * Also `phaselens inspect` on the results, through the real CLI.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { formatReport } from '../../src/io/inspect.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { makeTiny, type TinyArch, type WeightDtype } from '../../weights-tools/make-tiny.ts';
import { checkCheckpoint, validateCheckpoint } from '../../src/models/registry.ts';

const root = mkdtempSync(join(tmpdir(), 'phaselens-tiny-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const run = promisify(execFile);
const CLI = new URL('../../src/cli/phaselens.mjs', import.meta.url).pathname;

const cases: [TinyArch, WeightDtype, number][] = [
  ['llava', 'f32', 1],
  ['llava', 'f16', 1],
  ['llava', 'f16', 3],
  ['instructblip', 'f32', 2],
  ['instructblip', 'bf16', 1],
];

describe('make-tiny', () => {
  it.each(cases)('%s %s in %i file(s) validates and reads back', async (arch, dtype, shards) => {
    const out = join(root, `${arch}-${dtype}-${shards}`);
    const made = await makeTiny({ arch, out, dtype, shards, seed: 7 });
    const r = await validateCheckpoint(nodeDirectory(out));
    expect(r.config.model_type).toBe(arch);
    expect(r.checkpoint.shards.length).toBe(shards);
    expect(existsSync(join(out, 'model.safetensors.index.json'))).toBe(shards > 1);
    const st = { f32: 'F32', f16: 'F16', bf16: 'BF16' }[dtype];
    expect([...r.checkpoint.tensors.values()].every((t) => t.dtype === st)).toBe(true);
    expect(r.checkpoint.byteLength).toBe(made.bytes);
    // norm scales near 1, matrices near 0 with std 0.02
    const norm = await r.checkpoint.readTensor('language_model.model.norm.weight');
    const q = await r.checkpoint.readTensor('language_model.model.layers.0.self_attn.q_proj.weight');
    const decode = (b: Uint8Array) => (dtype === 'f32' ? new Float32Array(b.slice().buffer) : Float32Array.from(new Uint16Array(b.slice().buffer), (h) => (dtype === 'bf16' ? bf16(h) : f16(h))));
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const std = (a: Float32Array) => Math.sqrt(mean(a.map((v) => (v - mean(a)) ** 2)));
    expect(mean(decode(norm))).toBeCloseTo(1, 1);
    expect(std(decode(q))).toBeGreaterThan(0.015);
    expect(std(decode(q))).toBeLessThan(0.025);
    await r.checkpoint.close();
  });

  it('is deterministic in the seed, and the seed matters', async () => {
    const a = await makeTiny({ arch: 'llava', out: join(root, 'seed-a'), seed: 11, dtype: 'f16' });
    const b = await makeTiny({ arch: 'llava', out: join(root, 'seed-b'), seed: 11, dtype: 'f16' });
    const c = await makeTiny({ arch: 'llava', out: join(root, 'seed-c'), seed: 12, dtype: 'f16' });
    const bytes = (d: string) => readFileSync(join(d, 'model.safetensors'));
    expect(bytes(a.dir).equals(bytes(b.dir))).toBe(true);
    expect(bytes(a.dir).equals(bytes(c.dir))).toBe(false);
    // sharding does not change the values
    const s = await makeTiny({ arch: 'llava', out: join(root, 'seed-s'), seed: 11, dtype: 'f16', shards: 2 });
    const one = await validateCheckpoint(nodeDirectory(a.dir));
    const two = await validateCheckpoint(nodeDirectory(s.dir));
    for (const name of one.checkpoint.tensors.keys()) {
      const [x, y] = [await one.checkpoint.readTensor(name), await two.checkpoint.readTensor(name)];
      expect(Buffer.from(x).equals(Buffer.from(y)), name).toBe(true);
    }
    await one.checkpoint.close();
    await two.checkpoint.close();
  });

  it('tiny llava is under 10 MB in f16, with the real tokenizer and an adapted processor', async () => {
    const d = join(root, 'llava-f16-1');
    expect(statSync(join(d, 'model.safetensors')).size).toBeLessThan(10e6);
    const config = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(['LlavaForConditionalGeneration']);
    expect([config.image_token_index, config.text_config.vocab_size, config.vision_config.image_size, config.torch_dtype]).toEqual([32000, 32064, 42, 'float16']);
    const tok = JSON.parse(readFileSync(join(d, 'tokenizer.json'), 'utf8'));
    expect(tok.added_tokens.find((t: { content: string }) => t.content === '<image>').id).toBe(32000);
    const pre = JSON.parse(readFileSync(join(d, 'preprocessor_config.json'), 'utf8'));
    expect([pre.crop_size, pre.size, pre.image_processor_type]).toEqual([{ height: 42, width: 42 }, { shortest_edge: 42 }, 'CLIPImageProcessor']);
    for (const f of ['tokenizer_config.json', 'special_tokens_map.json', 'chat_template.json', 'processor_config.json', 'generation_config.json']) expect(existsSync(join(d, f))).toBe(true);
  });

  it('tiny instructblip has the Q-Former tokenizer under qformer_tokenizer/ with [DEC]', async () => {
    const d = join(root, 'instructblip-bf16-1');
    const q = join(d, 'qformer_tokenizer');
    const tok = JSON.parse(readFileSync(join(q, 'tokenizer.json'), 'utf8'));
    expect(tok.added_tokens.at(-1)).toMatchObject({ id: 30522, content: '[DEC]' });
    expect(JSON.parse(readFileSync(join(q, 'special_tokens_map.json'), 'utf8')).bos_token).toBe('[DEC]');
    expect(JSON.parse(readFileSync(join(q, 'tokenizer_config.json'), 'utf8')).tokenizer_class).toBe('BertTokenizer');
    expect(existsSync(join(q, 'vocab.txt'))).toBe(true);
    const pre = JSON.parse(readFileSync(join(d, 'preprocessor_config.json'), 'utf8'));
    expect([pre.image_processor_type, pre.size]).toEqual(['BlipImageProcessor', { height: 42, width: 42 }]);
    const config = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    expect([config.qformer_config.vocab_size, config.num_query_tokens, config.text_config.model_type]).toEqual([30523, 8, 'llama']);
  });

  it('--gqa gives 2 KV heads', async () => {
    const out = join(root, 'gqa');
    const made = await makeTiny({ arch: 'llava', out, gqa: true });
    expect(made.config.text_config.num_key_value_heads).toBe(2);
    const r = await validateCheckpoint(nodeDirectory(out));
    expect(r.checkpoint.info('language_model.model.layers.0.self_attn.k_proj.weight').shape).toEqual([32, 64]);
    await r.checkpoint.close();
  });
});

describe('inspect', () => {
  it('condenses layers, counts parameters per module and reports OK', async () => {
    const r = await checkCheckpoint(nodeDirectory(join(root, 'llava-f16-3')));
    await r.checkpoint.close();
    const text = formatReport('tiny', r);
    expect(text).toMatch(/model_type llava/);
    expect(text).toMatch(/language_model\.model\.layers\.\{0\.\.2\}\.mlp\.down_proj\.weight +F16 +\[64, 107\] +×3/);
    expect(text).toMatch(/\[1\] model-00001-of-00003\.safetensors/);
    expect(text).toMatch(/ {2}vision tower +46,878/);
    expect(text).toMatch(/ {2}total +4,268,574/);
    expect(text).toMatch(/GPU memory for the weights: 8\.5 MB in fp16, 17\.1 MB in fp32/);
    expect(text).toMatch(/OK: every tensor is present/);
    expect(formatReport('tiny', r, true)).toMatch(/language_model\.model\.layers\.1\.mlp\.down_proj\.weight/);
  });

  it('instructblip: cross-attention layers {0,2}, q-former parameters', async () => {
    const r = await checkCheckpoint(nodeDirectory(join(root, 'instructblip-bf16-1')));
    await r.checkpoint.close();
    const text = formatReport('tiny', r);
    expect(text).toMatch(/qformer\.encoder\.layer\.\{0,2\}\.crossattention\.attention\.key\.weight +BF16 +\[32, 40\] +×2/);
    expect(text).toMatch(/ {2}q-former +\d/);
    expect(text).toMatch(/BF16 is widened to fp32 on upload/);
  });

  it('the CLI exits 0 on a good folder and 2 with the reason on a broken one', async () => {
    const good = await run(process.execPath, [CLI, 'inspect', join(root, 'instructblip-f32-2')]);
    expect(good.stdout).toMatch(/model_type instructblip/);
    const broken = join(root, 'broken');
    await makeTiny({ arch: 'llava', out: broken, shards: 2 });
    unlinkSync(join(broken, 'model-00002-of-00002.safetensors'));
    const e = await run(process.execPath, [CLI, 'inspect', broken]).catch((err) => err);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/phaselens: .*shard model-00002-of-00002\.safetensors is missing/);

    const mismatch = join(root, 'mismatch');
    await makeTiny({ arch: 'llava', out: mismatch });
    const config = JSON.parse(readFileSync(join(mismatch, 'config.json'), 'utf8'));
    config.vision_config.hidden_size = 36;
    writeFileSync(join(mismatch, 'config.json'), JSON.stringify(config));
    const m = await run(process.execPath, [CLI, 'inspect', mismatch]).catch((err) => err);
    expect(m.code).toBe(2);
    expect(m.stdout).toMatch(/NOT USABLE:\n {2}\d+ tensors have the wrong shape for this config: vision_tower\.vision_model\.embeddings\.class_embedding is \[32\], expected \[36\]/);
    expect(m.stderr).toMatch(/is not usable/);
  });
});

function f16(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

function bf16(h: number): number {
  return new Float32Array(new Uint32Array([h << 16]).buffer)[0];
}
