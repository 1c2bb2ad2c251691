/**
 * The two model organisms' architectures, as the config.json HF would save for them,
 * and the checkpoint skeleton (config, tokenizer, processor files: everything but the
 * weights) that the data preparation reads its tokenizers from and the export completes.
 *
 * Both share one tiny Vicuna-shaped decoder: the real 32064-token vocabulary with tied
 * embeddings (the vocabulary is most of the parameters, so tying halves the file), 8
 * layers so a per-layer curve has room for phases, hidden 64 (what one CPU thread trains
 * in under half an hour). The towers see 48 px
 * shapes-world images in 16 px patches: a 3×3 grid whose cells are the world's places, so
 * each object sits inside one patch and LLaVA has 9 visual tokens (finer patches cut
 * objects at the anchors, which lie on their borders). InstructBLIP's Q-Former hands 16
 * query outputs to the decoder.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { isMain, runStandalone } from '../../src/cli/standalone.ts';
import { UserError } from '../../src/errors.ts';
import { parseConfig, type ModelConfig } from '../../src/io/config.ts';
import { expectedTensors } from '../../src/io/expected-tensors.ts';
import { checkImageSize } from '../shapes/render.ts';
import { writeInstructBlipProcessor, writeLlavaProcessor } from '../processor-files.ts';

export type OrganismArch = 'llava' | 'instructblip';

/** The shipped checkpoints' cap (f16 weights, bytes). */
export const MAX_CHECKPOINT_BYTES = 16_000_000;
export const IMAGE_SIZE = 48;
export const PATCH_SIZE = 16;

export interface OrganismShape {
  imageSize: number;
  patchSize: number;
  lmHidden: number;
  lmMlp: number;
  lmLayers: number;
}

export const DEFAULT_SHAPE: OrganismShape = { imageSize: IMAGE_SIZE, patchSize: PATCH_SIZE, lmHidden: 64, lmMlp: 172, lmLayers: 8 };

function vicuna(s: OrganismShape): Record<string, unknown> {
  return {
    _name_or_path: 'phaselens/shapes-vicuna',
    architectures: ['LlamaForCausalLM'],
    hidden_size: s.lmHidden,
    intermediate_size: s.lmMlp,
    max_position_embeddings: 512,
    model_type: 'llama',
    num_attention_heads: 4,
    num_hidden_layers: s.lmLayers,
    num_key_value_heads: 4,
    pad_token_id: 32001,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    tie_word_embeddings: true,
    torch_dtype: 'float16',
    vocab_size: 32064,
  };
}

export function organismConfigJson(arch: OrganismArch, s: OrganismShape = DEFAULT_SHAPE): Record<string, unknown> {
  checkImageSize(s.imageSize);
  if (s.imageSize % s.patchSize) throw new UserError(`image size ${s.imageSize} is not divisible by the patch size ${s.patchSize}`);
  if (s.lmHidden % 8) throw new UserError(`LM hidden size ${s.lmHidden} must be a multiple of 8 (4 heads of even size for RoPE)`);
  const common = { tie_word_embeddings: true, torch_dtype: 'float16', transformers_version: '4.36.0.dev0' };
  const grid = s.imageSize / s.patchSize;
  if (arch === 'llava') {
    return {
      architectures: ['LlavaForConditionalGeneration'],
      ignore_index: -100,
      image_seq_length: grid * grid,
      image_token_index: 32000,
      model_type: 'llava',
      pad_token_id: 32001,
      projector_hidden_act: 'gelu',
      text_config: vicuna(s),
      ...common,
      vision_config: {
        hidden_size: 64,
        image_size: s.imageSize,
        intermediate_size: 256,
        model_type: 'clip_vision_model',
        num_attention_heads: 4,
        // features are hidden_states[-2], so the last layer is there only for the layout
        num_hidden_layers: 4,
        patch_size: s.patchSize,
        projection_dim: 64,
      },
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      vocab_size: 32064,
    };
  }
  return {
    architectures: ['InstructBlipForConditionalGeneration'],
    image_token_index: 32000,
    // initializer_factor left out (HF's default is 1.0): JSON.stringify writes 1.0 as 1,
    // which transformers ≥ 5 refuses for a float field
    initializer_range: 0.02,
    model_type: 'instructblip',
    num_query_tokens: 16,
    qformer_config: {
      attention_probs_dropout_prob: 0.1,
      cross_attention_frequency: 2,
      encoder_hidden_size: 64,
      hidden_act: 'gelu',
      hidden_dropout_prob: 0.1,
      hidden_size: 64,
      intermediate_size: 256,
      layer_norm_eps: 1e-12,
      max_position_embeddings: 64,
      model_type: 'instructblip_qformer',
      num_attention_heads: 4,
      num_hidden_layers: 4,
      pad_token_id: 0,
      position_embedding_type: 'absolute',
      vocab_size: 30523,
    },
    text_config: vicuna(s),
    ...common,
    use_decoder_only_language_model: true,
    vision_config: {
      hidden_act: 'gelu',
      hidden_size: 64,
      image_size: s.imageSize,
      intermediate_size: 256,
      layer_norm_eps: 1e-6,
      model_type: 'instructblip_vision_model',
      num_attention_heads: 4,
      num_hidden_layers: 3,
      patch_size: s.patchSize,
      qkv_bias: true,
    },
  };
}

/** The parsed config and its f16 weight bytes, refused when over the cap. */
export function checkedConfig(json: Record<string, unknown>): { config: ModelConfig; bytes: number } {
  const config = parseConfig(JSON.stringify(json), 'organism config.json');
  const params = expectedTensors(config).filter((t) => !t.optional).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const bytes = 2 * params;
  if (bytes > MAX_CHECKPOINT_BYTES) throw new UserError(`this model has ${params} parameters, ${(bytes / 1e6).toFixed(1)} MB in f16: over the ${MAX_CHECKPOINT_BYTES / 1e6} MB cap of a shipped organism`);
  return { config, bytes };
}

/** Writes config.json, tokenizer and processor files into `dir` (created). */
export async function writeSkeleton(dir: string, json: Record<string, unknown>): Promise<ModelConfig> {
  const { config } = checkedConfig(json);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  const size = config.vision_config.image_size;
  if (config.model_type === 'llava') await writeLlavaProcessor(dir, size);
  else await writeInstructBlipProcessor(dir, size);
  return config;
}

export function configureSkeleton(cmd: Command): Command {
  return cmd
    .description("write an organism's config.json, tokenizer and processor files (no weights)")
    .addOption(new Option('--arch <arch>', 'layout').choices(['llava', 'instructblip']).makeOptionMandatory())
    .requiredOption('--out <dir>', 'checkpoint folder (created)')
    .action(async (o: { arch: OrganismArch; out: string }) => {
      const json = organismConfigJson(o.arch);
      await writeSkeleton(o.out, json);
      console.log(`wrote ${o.out}: ${o.arch} organism skeleton, ${(checkedConfig(json).bytes / 1e6).toFixed(1)} MB of f16 weights to come`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configureSkeleton(new Command('organism-skeleton')));
