/**
 * make-tiny: writes a complete, tiny Hugging Face checkpoint folder for tests and the
 * demo — config.json in the real structure of a family of the table (models/registry.ts,
 * its `tiny` shape around the tiny LLaMA below), deterministic random weights under HF
 * names and shapes (the family's expected tensors, so generator and loader cannot
 * disagree), the real llava-1.5 tokenizer, and processor files.
 *
 *   node src/cli/run-ts.mjs weights-tools/make-tiny.ts --arch llava --seed 1 --out DIR [--dtype f16] [--shards 2] [--gqa] [--layout transformers5]
 *   phaselens make-tiny …
 *
 * `--layout hub` (default) writes the folder as the hub has it; `--layout transformers5`
 * as transformers 5's save_pretrained writes it: its tensor names (src/io/layouts.ts),
 * its config.json spelling and its processor/tokenizer files (processor-files.ts). Both
 * hold the same numbers: values are drawn by canonical tensor name.
 *
 * Sizes are small but deliberately awkward: vision MLP 74 (not a multiple of 4),
 * LM MLP 107 (odd, so f16 rows do not fill whole u32 words), 42 px images of 3×3
 * patches (10 positions with CLS), vision head dims 8 (llava) / 10 (instructblip),
 * LM head dim 16, optional grouped-query attention (4 query heads, 2 KV heads). The
 * vocabulary is the real one (32064), so the tiny llava is ~8.5 MB in f16.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { isMain, runStandalone } from '../src/cli/standalone.ts';
import { UserError } from '../src/errors.ts';
import type { ModelConfig } from '../src/io/config.ts';
import { storedName, type Layout } from '../src/io/layouts.ts';
import { expectedTensors, FAMILIES, FAMILY_NAMES, familyOf, findLayout, parseConfig } from '../src/models/registry.ts';
import type { SafetensorsDtype } from '../src/io/safetensors.ts';
import { tensorBytes, type TensorSpec } from '../src/io/safetensors-write.ts';
import { writeProcessorFiles } from './processor-files.ts';
import { encodeValues, initValues } from './random-weights.ts';
import { writeWeights } from './write-checkpoint.ts';

/** A family of the table (models/registry.ts), by its model_type. */
export type TinyArch = string;
export type WeightDtype = 'f32' | 'f16' | 'bf16';
/** The folder as the hub has it, or as transformers 5's save_pretrained writes it. */
export type FolderLayout = 'hub' | 'transformers5';

/** The key layout of a `--layout` folder. */
export function keyLayout(arch: TinyArch, layout: FolderLayout): Layout {
  return findLayout(arch, layout === 'hub' ? 'hub' : familyOf(arch, '--arch').transformers5Layout)!;
}

export interface MakeTinyOptions {
  arch: TinyArch;
  out: string;
  seed?: number;
  dtype?: WeightDtype;
  /** 1 (default): model.safetensors; more: shards plus model.safetensors.index.json. */
  shards?: number;
  /** Grouped-query attention in the LM: 2 KV heads for 4 query heads. */
  gqa?: boolean;
  /** Default hub. */
  layout?: FolderLayout;
  /** LM layers (default 3). */
  layers?: number;
}

export interface TinyCheckpoint {
  dir: string;
  config: ModelConfig;
  /** Files written, relative to dir. */
  files: string[];
  tensors: number;
  bytes: number;
}

const SAFETENSORS_DTYPE: Record<WeightDtype, SafetensorsDtype> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const TORCH_DTYPE: Record<WeightDtype, string> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };

const IMAGE_SIZE = 42;
const PATCH_SIZE = 14;

/**
 * transformers 5's spelling of a config.json: `dtype` for `torch_dtype`, `rope_parameters`
 * for `rope_theta`, `head_dim` written out, its own version (as its save_pretrained does).
 */
function transformers5Spelling(json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    if (k === 'torch_dtype') out.dtype = v;
    else if (k === 'rope_theta') out.rope_parameters = { rope_theta: v, rope_type: 'default' };
    else if (k === 'transformers_version') out[k] = '5.18.0';
    else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = transformers5Spelling(v as Record<string, unknown>);
    else out[k] = v;
  }
  if (json.model_type === 'llama') out.head_dim = (json.hidden_size as number) / (json.num_attention_heads as number);
  return out;
}

function tinyLlama(dtype: WeightDtype, gqa: boolean, layers = 3): Record<string, unknown> {
  return {
    _name_or_path: 'phaselens/tiny-vicuna',
    architectures: ['LlamaForCausalLM'],
    hidden_size: 64,
    intermediate_size: 107,
    max_position_embeddings: 4096,
    model_type: 'llama',
    num_attention_heads: 4,
    num_hidden_layers: layers,
    num_key_value_heads: gqa ? 2 : 4,
    pad_token_id: 32001,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    torch_dtype: TORCH_DTYPE[dtype],
    vocab_size: 32064,
  };
}

/** The config.json object of a tiny checkpoint of `arch` (keys as HF writes them; transformers 5's spelling for that layout). */
export function tinyConfigJson(arch: string, dtype: WeightDtype = 'f32', gqa = false, layout: FolderLayout = 'hub', layers = 3): Record<string, unknown> {
  const json = familyOf(arch, '--arch').tiny(tinyLlama(dtype, gqa, layers), { imageSize: IMAGE_SIZE, patchSize: PATCH_SIZE });
  return layout === 'hub' ? json : transformers5Spelling(json);
}

export async function makeTiny(opts: MakeTinyOptions): Promise<TinyCheckpoint> {
  const dtype = opts.dtype ?? 'f32';
  const seed = opts.seed ?? 0;
  const shards = opts.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1) throw new UserError(`--shards must be a positive integer, got ${opts.shards}`);
  if (opts.layers !== undefined && !(Number.isInteger(opts.layers) && opts.layers >= 1)) throw new UserError(`layers must be a positive integer, got ${opts.layers}`);
  const json = tinyConfigJson(opts.arch, dtype, opts.gqa ?? false, opts.layout ?? 'hub', opts.layers);
  const config = parseConfig(JSON.stringify(json), 'tiny config.json');
  const layout = opts.layout ?? 'hub';
  const keys = keyLayout(opts.arch, layout);
  // values are drawn by canonical name, so every layout holds the same numbers
  const canonical = new Map<string, string>();
  const specs: TensorSpec[] = expectedTensors(config)
    .filter((t) => !t.optional || t.generated)
    .map((t) => {
      const name = storedName(keys, t.name);
      canonical.set(name, t.name);
      return { name, shape: t.shape, dtype: SAFETENSORS_DTYPE[dtype] };
    });
  // qkv.bias is [q_bias, 0, v_bias] in real checkpoints: keys have no bias
  const data = (t: TensorSpec) => {
    const name = canonical.get(t.name)!;
    const values = initValues(name, t.shape, seed);
    if (name.endsWith('.self_attn.qkv.bias')) values.fill(0, values.length / 3, (2 * values.length) / 3);
    return encodeValues(values, t.dtype);
  };

  await mkdir(opts.out, { recursive: true });
  const files = await writeWeights(opts.out, specs, data, { shards });
  await writeFile(join(opts.out, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  await writeProcessorFiles(opts.out, familyOf(config.model_type), config, layout);
  const bytes = specs.reduce((n, t) => n + tensorBytes(t), 0);
  return { dir: opts.out, config, files: ['config.json', ...files], tensors: specs.length, bytes };
}

/** Adds make-tiny's options and action to `cmd` (shared by the CLI and the script). */
export function configureMakeTiny(cmd: Command): Command {
  return cmd
    .description(`write a tiny HF-format checkpoint (${FAMILY_NAMES.join(' / ')}) with deterministic random weights`)
    .addOption(new Option('--arch <arch>', `model family: ${FAMILIES.map((f) => `${f.modelType} (${f.description})`).join('; ')}`).choices(FAMILY_NAMES).makeOptionMandatory())
    .requiredOption('--out <dir>', 'output folder (created)')
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .addOption(new Option('--dtype <dtype>', 'weight dtype').choices(['f32', 'f16', 'bf16']).default('f32'))
    .option('--shards <n>', 'number of safetensors shards (>1 writes model.safetensors.index.json)', (v) => parseInt(v, 10), 1)
    .option('--gqa', 'grouped-query attention: 2 KV heads for 4 query heads', false)
    .addOption(
      new Option('--layout <layout>', 'folder format: hub (llava-hf / Salesforce on the hub) or transformers5 (what save_pretrained of transformers 5 writes)')
        .choices(['hub', 'transformers5'])
        .default('hub'),
    )
    .action(async (o: MakeTinyOptions) => {
      const r = await makeTiny(o);
      console.log(`wrote ${r.dir}: ${r.config.model_type}, ${r.tensors} tensors, ${(r.bytes / 1e6).toFixed(1)} MB of weights in ${r.files.filter((f) => f.endsWith('.safetensors')).length} file(s)`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configureMakeTiny(new Command('make-tiny')));
