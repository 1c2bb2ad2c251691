/**
 * config.json parsing: the real llava-1.5-7b-hf config (test/fixtures) must yield the
 * real model's numbers through HF's defaults, and absurd or unsupported configs must
 * be refused with a message naming the key before anything is allocated.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { parseConfig } from '../../src/models/registry.ts';
import { type LlavaConfig } from '../../src/io/config-llava.ts';
import type { InstructBlipConfig } from '../../src/io/config-instructblip.ts';

const realText = readFileSync(new URL('../fixtures/llava-1.5-7b-hf/config.json', import.meta.url), 'utf8');
const real = () => JSON.parse(realText);

function refuse(config: unknown): string {
  try {
    parseConfig(JSON.stringify(config), 'cfg/config.json');
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected the config to be refused');
}

describe('real llava-1.5-7b-hf config', () => {
  const c = parseConfig(realText) as LlavaConfig;

  it('vision tower: CLIP ViT-L/14 at 336 px', () => {
    const v = c.vision_config;
    expect([v.hidden_size, v.num_hidden_layers, v.num_attention_heads, v.intermediate_size]).toEqual([1024, 24, 16, 4096]);
    expect([v.image_size, v.patch_size, (v.image_size / v.patch_size) ** 2 + 1]).toEqual([336, 14, 577]);
    expect(v.hidden_act).toBe('quick_gelu'); // CLIPVisionConfig default, absent from the file
    expect(v.layer_norm_eps).toBe(1e-5);
  });

  it('language model: Vicuna-7B from LlamaConfig defaults plus the few keys the file sets', () => {
    const t = c.text_config;
    expect([t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.intermediate_size]).toEqual([4096, 32, 32, 32, 11008]);
    expect([t.vocab_size, t.head_dim, t.rope_theta, t.rms_norm_eps]).toEqual([32064, 128, 10000, 1e-5]);
    expect([t.hidden_act, t.max_position_embeddings, t.tie_word_embeddings]).toEqual(['silu', 4096, false]);
  });

  it('llava glue', () => {
    expect([c.image_token_index, c.vision_feature_layer, c.vision_feature_select_strategy, c.projector_hidden_act]).toEqual([32000, -2, 'default', 'gelu']);
    expect(c.image_seq_length).toBe(576);
    expect(c.multimodal_projector_bias).toBe(true);
  });

  it('takes vocab_size from the top level when text_config has none (transformers 4.36 layout)', () => {
    const j = real();
    delete j.text_config.vocab_size;
    expect((parseConfig(JSON.stringify(j)) as LlavaConfig).text_config.vocab_size).toBe(32064);
  });
});

describe('instructblip config', () => {
  it('fills InstructBLIP defaults (EVA ViT-g, BERT-base Q-Former)', () => {
    const c = parseConfig(JSON.stringify({ model_type: 'instructblip', text_config: { model_type: 'llama', vocab_size: 32001 }, qformer_config: { vocab_size: 30523 } })) as InstructBlipConfig;
    expect(c.model_type).toBe('instructblip');
    expect([c.vision_config.hidden_size, c.vision_config.num_hidden_layers, c.vision_config.num_attention_heads, c.vision_config.intermediate_size]).toEqual([1408, 39, 16, 6144]);
    expect([c.vision_config.image_size, c.vision_config.patch_size, c.vision_config.qkv_bias, c.vision_config.layer_norm_eps]).toEqual([224, 14, true, 1e-6]);
    const q = c.qformer_config;
    expect([q.hidden_size, q.num_hidden_layers, q.num_attention_heads, q.intermediate_size, q.cross_attention_frequency, q.vocab_size]).toEqual([768, 12, 12, 3072, 2, 30523]);
    expect(q.encoder_hidden_size).toBe(1408); // always the vision width
    expect(c.num_query_tokens).toBe(32);
    expect(c.image_token_index).toBeNull();
  });

  it('refuses a language model other than llama', () => {
    expect(refuse({ model_type: 'instructblip', text_config: {} })).toMatch(/text_config\.model_type is missing \(HF would default to "opt"/);
    expect(refuse({ model_type: 'instructblip', text_config: { model_type: 't5' } })).toMatch(/text_config\.model_type = "t5" is not supported \(supported: llama\)/);
  });
});

describe('refused configs', () => {
  it('unsupported model_type lists the supported ones', () => {
    expect(refuse({ model_type: 'llava_onevision' })).toMatch(/cfg\/config\.json: model_type "llava_onevision" is not supported \(supported: llava, llava_next, instructblip, chameleon\)/);
    expect(refuse({})).toMatch(/model_type undefined is not supported/);
  });

  it('absurd sizes are refused, naming the key', () => {
    const big = real();
    big.text_config.hidden_size = 1e9;
    expect(refuse(big)).toMatch(/text_config\.hidden_size = 1000000000 is out of range \[1, 65536\]/);
    const deep = real();
    deep.vision_config.num_hidden_layers = 1e6;
    expect(refuse(deep)).toMatch(/vision_config\.num_hidden_layers = 1000000 is out of range/);
    const vocab = real();
    vocab.text_config.vocab_size = 2 ** 40;
    expect(refuse(vocab)).toMatch(/text_config\.vocab_size = 1099511627776 is out of range/);
    const neg = real();
    neg.text_config.intermediate_size = -5;
    expect(refuse(neg)).toMatch(/text_config\.intermediate_size = -5 is out of range/);
  });

  it('inconsistent shapes are refused', () => {
    const heads = real();
    heads.text_config.num_attention_heads = 30;
    expect(refuse(heads)).toMatch(/text_config\.hidden_size = 4096 is not divisible by num_attention_heads = 30/);
    const kv = real();
    kv.text_config.num_key_value_heads = 5;
    expect(refuse(kv)).toMatch(/num_attention_heads = 32 is not a multiple of num_key_value_heads = 5/);
    const patch = real();
    patch.vision_config.patch_size = 15;
    expect(refuse(patch)).toMatch(/vision_config\.image_size = 336 is not a multiple of patch_size = 15/);
    const layer = real();
    layer.vision_feature_layer = -30;
    expect(refuse(layer)).toMatch(/vision_feature_layer = -30: each entry must be an integer in \[-25, 24\]/);
  });

  it('wrong types and unsupported options', () => {
    const s = real();
    s.text_config.num_hidden_layers = '32';
    expect(refuse(s)).toMatch(/text_config\.num_hidden_layers = "32" is not an integer/);
    const f = real();
    f.text_config.num_hidden_layers = 3.5;
    expect(refuse(f)).toMatch(/is not an integer/);
    const rope = real();
    rope.text_config.rope_scaling = { rope_type: 'yarn', factor: 4 };
    expect(refuse(rope)).toMatch(/text_config\.rope_scaling = .*yarn.*: rope_type "yarn" is not supported \(supported: default, llama3\)/);
    const llama3 = real();
    llama3.text_config.rope_scaling = { rope_type: 'llama3', factor: 8 };
    expect(refuse(llama3)).toMatch(/text_config\.rope_scaling\.low_freq_factor is missing/);
    const act = real();
    act.projector_hidden_act = 'swish7';
    expect(refuse(act)).toMatch(/projector_hidden_act = "swish7" is not supported/);
    const vt = real();
    vt.vision_config.model_type = 'siglip_vision_model';
    expect(refuse(vt)).toMatch(/vision_config\.model_type = "siglip_vision_model" is not supported \(supported: clip_vision_model\)/);
    const eps = real();
    eps.text_config.rms_norm_eps = 0;
    expect(refuse(eps)).toMatch(/rms_norm_eps = 0 is out of range/);
  });

  it('not JSON', () => {
    expect(() => parseConfig('{"model_type": "llava",', 'x/config.json')).toThrow(/x\/config\.json: not valid JSON/);
    expect(() => parseConfig('[]', 'x/config.json')).toThrow(/not a JSON object/);
  });
});
