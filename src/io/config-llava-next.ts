/**
 * LlavaNextConfig (configuration_llava_next.py): LlavaConfig's keys and defaults (CLIP
 * ViT-L/14 at 336 px when vision_config is absent, features from layer −2, the projector)
 * plus `image_grid_pinpoints` (default [[336, 672], [672, 336], [672, 672], [1008, 336],
 * [336, 1008]], [height, width] each, multiples of the tower's image_size: the tile), with
 * a LLaMA (Vicuna, Llama-3) or Mistral `text_config`. Only the "default" feature strategy
 * (CLS dropped) packs tiles: with "full" HF's own grid reshape fails, so it is refused here.
 */
import { type ConfigDtype, type Reader } from './config.ts';
import { parseLlavaFields, type LlavaConfig } from './config-llava.ts';
import { parseLlamaLikeConfig, type LlamaLikeConfig } from './config-mistral.ts';

export interface LlavaNextConfig extends Omit<LlavaConfig, 'model_type' | 'text_config'> {
  model_type: 'llava_next';
  text_config: LlamaLikeConfig;
  /** [height, width] of each resolution the processor may tile an image to. */
  image_grid_pinpoints: [number, number][];
}

const DEFAULT_PINPOINTS: [number, number][] = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

export function parseLlavaNext(r: Reader, dtype: ConfigDtype): LlavaNextConfig {
  const c = parseLlavaFields(r, dtype, parseLlamaLikeConfig);
  if (c.vision_feature_select_strategy !== 'default') r.fail('vision_feature_select_strategy', `= "${c.vision_feature_select_strategy}": LLaVA-NeXT packs its tiles only with "default" (CLS dropped)`);
  if (Array.isArray(c.vision_feature_layer)) r.fail('vision_feature_layer', 'as a list (feature concatenation) is not supported yet');
  const tile = c.vision_config.image_size;
  const raw = r.raw('image_grid_pinpoints') ?? DEFAULT_PINPOINTS;
  if (!Array.isArray(raw) || raw.length === 0) r.fail('image_grid_pinpoints', `= ${JSON.stringify(raw)} must be a non-empty list of [height, width]`);
  const pinpoints = raw.map((p, i): [number, number] => {
    if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => Number.isInteger(v) && v > 0)) r.fail('image_grid_pinpoints', `entry ${i} = ${JSON.stringify(p)} is not [height, width] in pixels`);
    if (p[0] % tile !== 0 || p[1] % tile !== 0) r.fail('image_grid_pinpoints', `entry ${i} = [${p[0]}, ${p[1]}] is not a multiple of the tile size ${tile} (vision_config.image_size)`);
    return [p[0], p[1]];
  });
  return { ...c, model_type: 'llava_next', image_grid_pinpoints: pinpoints };
}
