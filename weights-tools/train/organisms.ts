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
import type { ModelConfig } from '../../src/io/config.ts';
import { expectedTensors, FAMILY_NAMES, familyOf, parseConfig } from '../../src/models/registry.ts';
import { checkImageSize } from '../shapes/render.ts';
import { writeProcessorFiles } from '../processor-files.ts';

/** A family of the table (models/registry.ts), by its model_type. */
export type OrganismArch = string;

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
  return familyOf(arch, '--arch').organism(vicuna(s), { imageSize: s.imageSize, patchSize: s.patchSize });
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
  await writeProcessorFiles(dir, familyOf(config.model_type), config);
  return config;
}

export function configureSkeleton(cmd: Command): Command {
  return cmd
    .description("write an organism's config.json, tokenizer and processor files (no weights)")
    .addOption(new Option('--arch <arch>', 'layout').choices(FAMILY_NAMES).makeOptionMandatory())
    .requiredOption('--out <dir>', 'checkpoint folder (created)')
    .action(async (o: { arch: OrganismArch; out: string }) => {
      const json = organismConfigJson(o.arch);
      await writeSkeleton(o.out, json);
      console.log(`wrote ${o.out}: ${o.arch} organism skeleton, ${(checkedConfig(json).bytes / 1e6).toFixed(1)} MB of f16 weights to come`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configureSkeleton(new Command('organism-skeleton')));
