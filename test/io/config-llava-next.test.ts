/**
 * LlavaNextConfig, MistralConfig and Llama-3's RoPE scaling as phaselens parses them: the
 * make-random shapes of the study's two NeXT models (written from the model cards: no real
 * config.json copy is at hand), HF's defaults for what a config leaves out (checked against
 * configuration_llava_next.py / configuration_mistral.py), and the refusals, each naming
 * its key, before anything loads.
 */
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import type { LlavaNextConfig } from '../../src/io/config-llava-next.ts';
import { anyresLayout, anyresTokens } from '../../src/io/image-processor-llava-next.ts';
import { parseImageProcessorConfig } from '../../src/io/image-processor.ts';
import { familyOf, parseConfig } from '../../src/models/registry.ts';

const next = familyOf('llava_next');
const parse = (json: unknown) => parseConfig(JSON.stringify(json)) as LlavaNextConfig;
// LlavaNextConfig's own default (vocab 32000 with <image> 32000) is out of range: give the llava-hf vocabulary
const vocab = { vocab_size: 32064 };

function refuse(json: unknown): string {
  try {
    parse(json);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected the config to be refused');
}

describe('LLaVA-NeXT shapes', () => {
  it('llava-v1.6-vicuna-7b: CLIP-L/14-336, Vicuna-7B with vocab 32064, the default pinpoints', () => {
    const c = parse(next.shapes['llava-v1.6-vicuna-7b']());
    expect(c.model_type).toBe('llava_next');
    expect(c.text_config).toMatchObject({ model_type: 'llama', vocab_size: 32064, hidden_size: 4096, num_key_value_heads: 32, rope_theta: 10000, rope_scaling: null });
    expect(c.vision_config).toMatchObject({ image_size: 336, patch_size: 14, hidden_size: 1024 });
    expect(c.image_grid_pinpoints).toEqual([[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]);
    // the 640×480 COCO image: 2×2 tiles, a 48×48 grid unpadded to 36 rows → 576 + 36·49 tokens
    const ip = parseImageProcessorConfig({ image_processor_type: 'LlavaNextImageProcessor', size: { shortest_edge: 336 }, crop_size: { height: 336, width: 336 } }, 'p');
    const t = anyresTokens(anyresLayout(480, 640, ip), 14);
    expect([t.rows, t.cols, t.total]).toEqual([36, 48, 576 + 36 * 49]);
  });

  it('llama3-llava-next-8b: GQA 32/8, MLP 14336, θ 500000, vocab 128320, <image> 128256, EOS <|eot_id|>', () => {
    const c = parse(next.shapes['llama3-llava-next-8b']());
    expect(c.text_config).toMatchObject({ model_type: 'llama', num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 14336, rope_theta: 500000, vocab_size: 128320, bos_token_id: 128000, eos_token_id: 128009, max_position_embeddings: 8192 });
    expect(c.image_token_index).toBe(128256);
    expect(next.describeConfig(c).join('\n')).toMatch(/32 heads \(8 KV\), MLP 14336, vocab 128320, RoPE θ 500000/);
  });
});

describe('defaults and language models', () => {
  it("LlavaNextConfig's defaults: LLaMA text, CLIP-L/14-336, the default pinpoints", () => {
    const c = parse({ model_type: 'llava_next', text_config: vocab });
    expect(c.text_config.model_type).toBe('llama');
    expect(c.vision_config.image_size).toBe(336);
    expect(c.image_grid_pinpoints.length).toBe(5);
  });

  it("MistralConfig's defaults and its sliding window (null turns it off)", () => {
    const c = parse({ model_type: 'llava_next', text_config: { ...vocab, model_type: 'mistral' } });
    expect(c.text_config).toMatchObject({ model_type: 'mistral', intermediate_size: 14336, num_key_value_heads: 8, max_position_embeddings: 131072, sliding_window: 4096, rms_norm_eps: 1e-6 });
    const off = parse({ model_type: 'llava_next', text_config: { ...vocab, model_type: 'mistral', sliding_window: null } });
    expect(off.text_config.model_type === 'mistral' && off.text_config.sliding_window).toBe(null);
  });

  it('rope_type llama3 in either spelling', () => {
    const p = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const t5 = parse({ model_type: 'llava_next', text_config: { ...vocab, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, ...p } } });
    const t4 = parse({ model_type: 'llava_next', text_config: { ...vocab, rope_theta: 500000, rope_scaling: { rope_type: 'llama3', ...p } } });
    for (const c of [t5, t4]) {
      expect(c.text_config.rope_theta).toBe(500000);
      expect(c.text_config.rope_scaling).toEqual({ rope_type: 'llama3', ...p });
    }
  });
});

describe('refusals', () => {
  it('pinpoints that are not multiples of the tile, or none', () => {
    expect(refuse({ model_type: 'llava_next', text_config: vocab, image_grid_pinpoints: [[336, 600]] })).toMatch(/image_grid_pinpoints entry 0 = \[336, 600\] is not a multiple of the tile size 336/);
    expect(refuse({ model_type: 'llava_next', text_config: vocab, image_grid_pinpoints: [] })).toMatch(/image_grid_pinpoints = \[\] must be a non-empty list/);
    expect(refuse({ model_type: 'llava_next', text_config: vocab, image_grid_pinpoints: [[336]] })).toMatch(/is not \[height, width\]/);
  });

  it('the feature strategy "full", a text model other than llama / mistral, a partial llama3 scaling', () => {
    expect(refuse({ model_type: 'llava_next', text_config: vocab, vision_feature_select_strategy: 'full' })).toMatch(/packs its tiles only with "default"/);
    expect(refuse({ model_type: 'llava_next', text_config: { ...vocab, model_type: 'qwen2' } })).toMatch(/text_config\.model_type = "qwen2" is not supported as the language model \(supported: llama, mistral\)/);
    expect(refuse({ model_type: 'llava_next', text_config: { ...vocab, rope_scaling: { rope_type: 'llama3', factor: 8 } } })).toMatch(/rope_scaling\.low_freq_factor is missing/);
  });

  it('an image processor whose pinpoints do not fit its tile', () => {
    const ip = parseImageProcessorConfig({ image_processor_type: 'LlavaNextImageProcessor', size: { shortest_edge: 336 }, crop_size: { height: 336, width: 336 }, image_grid_pinpoints: [[336, 500]] }, 'pre.json');
    expect(() => anyresLayout(480, 640, ip)).toThrow(/pre\.json: image_grid_pinpoints entry \[336, 500\] is not a multiple of the tile size 336/);
  });
});
