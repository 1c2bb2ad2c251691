/**
 * The expected tensor list against the real llava-1.5-7b-hf index (every name, every
 * byte of the total size), InstructBLIP's structure, and the mismatch report (the other
 * layouts: layouts.test.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ModelConfig } from '../../src/io/config.ts';
import { describeMatch, matchTensors } from '../../src/io/expected-tensors.ts';
import { numel } from '../../src/io/safetensors.ts';
import { expectedTensors, findLayout, matchCheckpoint, parseConfig } from '../../src/models/registry.ts';

const fixture = (f: string) => readFileSync(new URL(`../fixtures/llava-1.5-7b-hf/${f}`, import.meta.url), 'utf8');
const llava = parseConfig(fixture('config.json'));
const index = JSON.parse(fixture('model.safetensors.index.json')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
const realNames = Object.keys(index.weight_map);

function table(entries: { name: string; shape: number[] }[]): Map<string, { shape: number[] }> {
  return new Map(entries.map((e) => [e.name, { shape: e.shape }]));
}

describe('llava-1.5-7b-hf', () => {
  const expected = expectedTensors(llava);
  const hub = findLayout('llava', 'hub')!;

  it('names exactly the 686 tensors of the real index', () => {
    expect(realNames.length).toBe(686);
    expect(expected.length).toBe(686);
    expect(new Set(expected.map((e) => e.name))).toEqual(new Set(realNames));
  });

  it('shapes add up to the index total_size in fp16', () => {
    const bytes = expected.reduce((n, e) => n + numel(e.shape) * 2, 0);
    expect(bytes).toBe(index.metadata.total_size);
  });

  it('has the real shapes', () => {
    const shape = (n: string) => expected.find((e) => e.name === n)?.shape;
    expect(shape('vision_tower.vision_model.embeddings.patch_embedding.weight')).toEqual([1024, 3, 14, 14]);
    expect(shape('vision_tower.vision_model.embeddings.position_embedding.weight')).toEqual([577, 1024]);
    expect(shape('vision_tower.vision_model.embeddings.class_embedding')).toEqual([1024]);
    expect(shape('multi_modal_projector.linear_1.weight')).toEqual([4096, 1024]);
    expect(shape('multi_modal_projector.linear_2.weight')).toEqual([4096, 4096]);
    expect(shape('language_model.model.embed_tokens.weight')).toEqual([32064, 4096]);
    expect(shape('language_model.model.layers.31.mlp.down_proj.weight')).toEqual([4096, 11008]);
    expect(shape('language_model.lm_head.weight')).toEqual([32064, 4096]);
  });

  it('matches a checkpoint with those names and shapes, and reports every kind of mismatch', () => {
    expect(describeMatch(matchTensors(expected, table(expected), hub), expected.length, expected.length)).toEqual([]);

    const broken = table(expected);
    broken.delete('language_model.model.layers.7.self_attn.k_proj.weight');
    broken.delete('language_model.lm_head.weight');
    broken.set('language_model.model.layers.32.self_attn.k_proj.weight', { shape: [4096, 4096] });
    broken.set('vision_tower.vision_model.post_layernorm.weight', { shape: [1023] });
    const m = matchTensors(expected, broken, hub);
    expect(m.missing.map((e) => e.name)).toEqual(['language_model.model.layers.7.self_attn.k_proj.weight', 'language_model.lm_head.weight']);
    expect(m.unexpected).toEqual(['language_model.model.layers.32.self_attn.k_proj.weight']);
    const lines = describeMatch(m, expected.length, broken.size);
    expect(lines[0]).toMatch(/^2 of 686 expected tensors are missing: language_model\.model\.layers\.7\.self_attn\.k_proj\.weight \[4096, 4096\], language_model\.lm_head\.weight \[32064, 4096\]$/);
    expect(lines[1]).toMatch(/^1 of 685 tensors in the checkpoint are unexpected for this config: language_model\.model\.layers\.32/);
    expect(lines[2]).toMatch(/vision_tower\.vision_model\.post_layernorm\.weight is \[1023\], expected \[1024\]/);
  });

  it('lists only the first few of many problems, with counts', () => {
    const m = matchTensors(expected, new Map(), hub);
    expect(describeMatch(m, expected.length, 0)[0]).toMatch(/^686 of 686 expected tensors are missing: .*, … \(681 more\)$/);
  });

  it('reads the real index in the hub layout', () => {
    const m = matchCheckpoint(llava, table(expected));
    expect(m.layout.id).toBe('hub');
    expect(m.mapped).toBe(686);
  });

  it('ignores old persistent buffers, and lm_head when embeddings are tied', () => {
    const withBuffers = table(expected);
    withBuffers.set('language_model.model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [64] });
    withBuffers.set('vision_tower.vision_model.embeddings.position_ids', { shape: [1, 577] });
    const m = matchTensors(expected, withBuffers, hub);
    expect(m.unexpected).toEqual([]);
    expect(m.ignored.length).toBe(2);

    const tied = JSON.parse(fixture('config.json'));
    tied.tie_word_embeddings = true;
    const t = expectedTensors(parseConfig(JSON.stringify(tied)));
    const noHead = table(t.filter((e) => e.name !== 'language_model.lm_head.weight'));
    expect(matchTensors(t, noHead, hub).missing).toEqual([]);
  });
});

describe('InstructBLIP-Vicuna-7B shape', () => {
  const config: ModelConfig = parseConfig(
    JSON.stringify({ model_type: 'instructblip', qformer_config: { vocab_size: 30523 }, text_config: { model_type: 'llama', vocab_size: 32001 } }),
  );
  const expected = expectedTensors(config);
  const names = new Set(expected.map((e) => e.name));
  const shape = (n: string) => expected.find((e) => e.name === n)?.shape;

  it('vision: fused qkv with the [q_bias, 0, v_bias] bias, projection, learned position embedding', () => {
    expect(shape('vision_model.encoder.layers.38.self_attn.qkv.weight')).toEqual([4224, 1408]);
    expect(shape('vision_model.encoder.layers.38.self_attn.qkv.bias')).toEqual([4224]);
    expect(shape('vision_model.encoder.layers.0.self_attn.projection.weight')).toEqual([1408, 1408]);
    expect(shape('vision_model.embeddings.position_embedding')).toEqual([1, 257, 1408]);
    expect(shape('vision_model.embeddings.class_embedding')).toEqual([1, 1, 1408]);
    expect(names.has('vision_model.encoder.layers.39.self_attn.qkv.weight')).toBe(false);
    expect(names.has('vision_model.post_layernorm.weight')).toBe(true);
  });

  it('Q-Former: cross-attention on even layers only, query and text feed-forwards, own word embeddings', () => {
    const cross = [...names].filter((n) => n.endsWith('crossattention.attention.key.weight')).map((n) => Number(n.split('.')[3]));
    expect(cross).toEqual([0, 2, 4, 6, 8, 10]);
    expect(shape('qformer.encoder.layer.0.crossattention.attention.key.weight')).toEqual([768, 1408]);
    expect(shape('qformer.encoder.layer.11.output_query.dense.weight')).toEqual([768, 3072]);
    expect(shape('qformer.encoder.layer.11.intermediate.dense.weight')).toEqual([3072, 768]);
    expect(shape('qformer.embeddings.word_embeddings.weight')).toEqual([30523, 768]);
    expect(shape('query_tokens')).toEqual([1, 32, 768]);
    expect(shape('language_projection.weight')).toEqual([4096, 768]);
    expect(shape('language_model.lm_head.weight')).toEqual([32001, 4096]);
  });

  it('totals ~7.9 B parameters, as the published model', () => {
    const params = expected.reduce((n, e) => n + numel(e.shape), 0);
    expect(params).toBeGreaterThan(7.85e9);
    expect(params).toBeLessThan(7.95e9);
  });
});
