/**
 * Checkpoint folders: single file and sharded (index json), the errors a broken
 * shard set gives, classic-name aliases for the newer llava layout, and the
 * validation gate `validateCheckpoint` that loaders call (config first).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { writeSafetensors } from '../../src/io/safetensors-write.ts';
import { blobDirectory } from '../../src/io/source-blob.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { validateCheckpoint } from '../../src/models/registry.ts';

const root = mkdtempSync(join(tmpdir(), 'phaselens-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

const u8 = (len: number, v: number) => new Uint8Array(len).fill(v);

async function shardedDir(): Promise<string> {
  const d = fresh();
  await writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2] }], () => u8(8, 1));
  await writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), [{ name: 'b', dtype: 'F16', shape: [3] }], () => u8(6, 2));
  const weight_map = { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' };
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 14 }, weight_map }));
  return d;
}

async function error(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('Checkpoint', () => {
  it('opens a single model.safetensors', async () => {
    const d = fresh();
    await writeSafetensors(join(d, 'model.safetensors'), [{ name: 'x', dtype: 'BF16', shape: [4] }], () => u8(8, 3));
    const ck = await Checkpoint.open(nodeDirectory(d));
    expect(ck.shards).toEqual(['model.safetensors']);
    expect(ck.info('x')).toMatchObject({ dtype: 'BF16', shape: [4], shard: 'model.safetensors' });
    expect(await ck.readTensor('x')).toEqual(u8(8, 3));
    await ck.close();
  });

  it('presents the shards of an index as one table', async () => {
    const ck = await Checkpoint.open(nodeDirectory(await shardedDir()));
    expect(ck.shards).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(ck.info('b')).toMatchObject({ dtype: 'F16', shape: [3], shard: 'model-00002-of-00002.safetensors' });
    expect(await ck.readTensor('b')).toEqual(u8(6, 2));
    expect(ck.byteLength).toBe(14);
    const chunks: number[] = [];
    await ck.streamTensor('a', 4, (at, bytes) => void chunks.push(at, bytes[0]));
    expect(chunks).toEqual([0, 1, 4, 1]);
    await ck.close();
  });

  it('a missing shard is named, with how many tensors it should hold', async () => {
    const d = await shardedDir();
    unlinkSync(join(d, 'model-00002-of-00002.safetensors'));
    expect(await error(Checkpoint.open(nodeDirectory(d)))).toMatch(/shard model-00002-of-00002\.safetensors is missing \(model\.safetensors\.index\.json places 1 tensors in it\)/);
  });

  it('index and shards that disagree', async () => {
    const d = await shardedDir();
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors' } }));
    expect(await error(Checkpoint.open(nodeDirectory(d)))).toMatch(/model-00001-of-00002\.safetensors: has no tensor "b", which model\.safetensors\.index\.json places there/);
    await writeSafetensors(join(d, 'extra.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2] }, { name: 'c', dtype: 'U8', shape: [1] }], (t) => u8(t.name === 'a' ? 8 : 1, 0));
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'extra.safetensors' } }));
    expect(await error(Checkpoint.open(nodeDirectory(d)))).toMatch(/extra\.safetensors: tensor "c" is not listed in model\.safetensors\.index\.json/);
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { b: 'model-00002-of-00002.safetensors', a: '../etc/passwd' } }));
    expect(await error(Checkpoint.open(nodeDirectory(d)))).toMatch(/weight_map\["a"\] = "\.\.\/etc\/passwd" is not a file name in the folder/);
    writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": ');
    expect(await error(Checkpoint.open(nodeDirectory(d)))).toMatch(/model\.safetensors\.index\.json: not valid JSON/);
    writeFileSync(join(d, 'model.safetensors.index.json'), '{}');
    expect(await error(Checkpoint.open(nodeDirectory(d)))).toMatch(/no "weight_map" object/);
  });

  it('a folder without weights', async () => {
    expect(await error(Checkpoint.open(nodeDirectory(fresh())))).toMatch(/no model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('answers canonical names once useNames has mapped them (any layout)', async () => {
    const d = fresh();
    await writeSafetensors(
      join(d, 'model.safetensors'),
      [
        { name: 'model.language_model.norm.weight', dtype: 'F32', shape: [2] },
        { name: 'lm_head.weight', dtype: 'F32', shape: [1] },
      ],
      (t) => u8(t.shape[0] * 4, t.shape[0]),
    );
    const ck = await Checkpoint.open(nodeDirectory(d));
    expect(ck.has('language_model.model.norm.weight')).toBe(false);
    ck.useNames(new Map([['language_model.model.norm.weight', 'model.language_model.norm.weight'], ['language_model.lm_head.weight', 'lm_head.weight']]));
    expect(ck.has('language_model.model.norm.weight')).toBe(true);
    expect(ck.has('model.language_model.norm.weight')).toBe(true);
    expect(ck.info('language_model.lm_head.weight').name).toBe('lm_head.weight');
    expect(await ck.readTensor('language_model.model.norm.weight')).toEqual(u8(8, 2));
    await ck.close();
  });
});

describe('validateCheckpoint', () => {
  it('passes a generated checkpoint and returns it open', async () => {
    const d = fresh();
    await makeTiny({ arch: 'llava', out: d, seed: 3 });
    const r = await validateCheckpoint(nodeDirectory(d));
    expect(r.config.model_type).toBe('llava');
    expect(r.match.found.size).toBe(r.expected.length);
    await r.checkpoint.close();
  });

  it('works the same on files picked in a browser (Blobs)', async () => {
    const d = fresh();
    await makeTiny({ arch: 'instructblip', out: d, seed: 2, shards: 2, dtype: 'f16' });
    const files = new Map(readdirSync(d).filter((f) => f !== 'qformer_tokenizer').map((f) => [f, new Blob([readFileSync(join(d, f))])]));
    const r = await validateCheckpoint(blobDirectory(files, 'picked'));
    expect(r.checkpoint.shards.length).toBe(2);
    const name = 'qformer.encoder.layer.2.crossattention.attention.value.weight';
    const fromDisk = await Checkpoint.open(nodeDirectory(d));
    expect(Buffer.from(await r.checkpoint.readTensor(name)).equals(Buffer.from(await fromDisk.readTensor(name)))).toBe(true);
    await fromDisk.close();
    files.delete('model-00002-of-00002.safetensors');
    expect(await error(validateCheckpoint(blobDirectory(files, 'picked')))).toMatch(/picked: shard model-00002-of-00002\.safetensors is missing/);
  });

  it('checks the config before opening any weights (absurd sizes refused first)', async () => {
    const d = fresh();
    writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'llava', text_config: { num_hidden_layers: 1e6 } }));
    // no weights at all: the error must be about the config
    expect(await error(validateCheckpoint(nodeDirectory(d)))).toMatch(/config\.json: text_config\.num_hidden_layers = 1000000 is out of range/);
    expect(await error(validateCheckpoint(nodeDirectory(fresh())))).toMatch(/no config\.json/);
  });

  it('lists missing, unexpected and wrong-shape tensors', async () => {
    const d = fresh();
    await makeTiny({ arch: 'llava', out: d, seed: 1 });
    const config = JSON.parse(await import('node:fs/promises').then((f) => f.readFile(join(d, 'config.json'), 'utf8')));
    config.text_config.num_hidden_layers = 4; // the weights have 3
    config.text_config.intermediate_size = 108;
    writeFileSync(join(d, 'config.json'), JSON.stringify(config));
    const msg = await error(validateCheckpoint(nodeDirectory(d)));
    expect(msg).toMatch(/checkpoint does not match its config\.json \(llava\)/);
    expect(msg).toMatch(/9 of 98 expected tensors are missing: language_model\.model\.layers\.3\.input_layernorm\.weight \[64\]/);
    expect(msg).toMatch(/9 tensors have the wrong shape for this config: language_model\.model\.layers\.0\.mlp\.gate_proj\.weight is \[107, 64\], expected \[108, 64\]/);
  });

  it('refuses weights of a dtype that cannot be uploaded', async () => {
    const d = fresh();
    await makeTiny({ arch: 'llava', out: d, seed: 1 });
    const { Checkpoint: C } = await import('../../src/io/checkpoint.ts');
    const ck = await C.open(nodeDirectory(d));
    const specs = [...ck.tensors.values()].map((t) => ({ name: t.name, dtype: t.name.endsWith('norm.weight') ? ('I32' as const) : t.dtype, shape: t.shape }));
    const bytes = new Map<string, Uint8Array>();
    for (const t of specs) bytes.set(t.name, await ck.readTensor(t.name));
    await ck.close();
    await writeSafetensors(join(d, 'model.safetensors'), specs, (t) => bytes.get(t.name)!);
    expect(await error(validateCheckpoint(nodeDirectory(d)))).toMatch(/weights have a dtype other than F32\/F16\/BF16: .*norm\.weight \(I32\)/);
  });
});
