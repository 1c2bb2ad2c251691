/**
 * Tiny in-file models (STYLE.md item 8): one layer per tower, hidden sizes of 8, built from
 * a `Map` keyed by HF names (no checkpoint on disk, no tokenizer), for both families.
 * Checks the composition itself: shapes, finite outputs, and the splice — the LM input
 * (`lm.embed`) holds the tower's features (`projector.out`) at the visual positions and
 * the `embed_tokens` rows of the ids (looked up on the host) everywhere else.
 */
import { describe, expect, it } from 'vitest';
import { InstructBlipForConditionalGeneration } from '../../src/models/instructblip.ts';
import { LlavaForConditionalGeneration } from '../../src/models/llava.ts';
import { positionGroups } from '../../src/models/open.ts';
import type { VlmInput } from '../../src/models/vlm.ts';
import { mapSource, Weights } from '../../src/models/weights.ts';
import { runWithCache } from '../../src/probes/cache.ts';
import { getGpu, randn } from '../helpers/gpu.ts';
import { expectedTensors, parseConfig } from '../../src/models/registry.ts';
import { type InstructBlipConfig } from '../../src/io/config-instructblip.ts';
import { type LlavaConfig } from '../../src/io/config-llava.ts';

const VOCAB = 64;
const IMAGE_TOKEN = 60;
const llama = { model_type: 'llama', hidden_size: 8, intermediate_size: 12, num_attention_heads: 2, num_key_value_heads: 2, num_hidden_layers: 1, vocab_size: VOCAB, max_position_embeddings: 64 };
const vision = { hidden_size: 8, intermediate_size: 12, num_attention_heads: 2, num_hidden_layers: 1, image_size: 28, patch_size: 14 };

const CONFIGS = {
  llava: {
    model_type: 'llava',
    image_token_index: IMAGE_TOKEN,
    text_config: llama,
    vision_config: { ...vision, model_type: 'clip_vision_model', projection_dim: 8 },
    vision_feature_layer: -1,
  },
  instructblip: {
    model_type: 'instructblip',
    num_query_tokens: 3,
    image_token_index: IMAGE_TOKEN,
    text_config: llama,
    vision_config: { ...vision, model_type: 'instructblip_vision_model' },
    qformer_config: { model_type: 'instructblip_qformer', hidden_size: 8, intermediate_size: 12, num_attention_heads: 2, num_hidden_layers: 1, vocab_size: 40, max_position_embeddings: 16 },
  },
};

function weightsMap(cfg: LlavaConfig | InstructBlipConfig, seed: number) {
  const map = new Map<string, { data: Float32Array; shape: number[] }>();
  expectedTensors(cfg).forEach((t, i) => {
    if (t.optional) return;
    const n = t.shape.reduce((a, b) => a * b, 1);
    map.set(t.name, { data: randn(n, seed + i, 0.5), shape: t.shape });
  });
  return map;
}

for (const family of ['llava', 'instructblip'] as const) {
  describe(`${family} built from a Map of HF names`, () => {
    it('splices the features into the LM input and runs to finite hidden states of the right shape', async () => {
      const gpu = await getGpu();
      const cfg = parseConfig(JSON.stringify(CONFIGS[family]), `${family} in-file config`) as LlavaConfig | InstructBlipConfig;
      const map = weightsMap(cfg, 5);
      const w = new Weights(gpu, mapSource(map));
      const model = cfg.model_type === 'llava' ? await LlavaForConditionalGeneration.load(w, cfg) : await InstructBlipForConditionalGeneration.load(w, cfg);
      const n = cfg.model_type === 'llava' ? 4 : 3; // 2×2 patches (CLS dropped) / 3 queries
      const start = cfg.model_type === 'llava' ? 2 : 0;
      const text = [1, 7, 9, 11, 13];
      const ids = [...text.slice(0, start), ...Array(n).fill(IMAGE_TOKEN), ...text.slice(start)];
      const x: VlmInput = {
        ids,
        qformerIds: cfg.model_type === 'instructblip' ? [2, 5, 3] : undefined,
        pixels: { data: randn(3 * 28 * 28, 9), shape: [3, 28, 28] },
        groups: positionGroups(ids, [start, start + n], 1),
      };
      const { result: hidden, cache } = await runWithCache(gpu, model.hooks, ['lm.embed', 'projector.out'], async () => model.forward(gpu, x));
      expect(hidden.shape).toEqual([ids.length, 8]);
      const h = await gpu.readF32(hidden);
      expect(h.every(Number.isFinite)).toBe(true);
      const embed = await gpu.readF32(cache.get('lm.embed')!);
      const features = await gpu.readF32(cache.get('projector.out')!);
      expect(cache.get('projector.out')!.shape).toEqual([n, 8]);
      expect(Array.from(embed.subarray(start * 8, (start + n) * 8))).toEqual(Array.from(features));
      const table = map.get('language_model.model.embed_tokens.weight')!.data;
      for (const i of x.groups.text) expect(Array.from(embed.subarray(i * 8, (i + 1) * 8)), `row ${i}`).toEqual(Array.from(table.subarray(ids[i] * 8, (ids[i] + 1) * 8)));
      gpu.release(hidden, ...cache.values());
    });
  });
}
