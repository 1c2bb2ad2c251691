/**
 * make-random: writes a full-size checkpoint of random fp16 weights in HF layout, for
 * GPU performance work where no real weights can be downloaded. Shards of at most
 * ~5 GB as `save_pretrained` writes them; each tensor is generated and written in
 * 16 MB chunks, so memory stays small whatever the model size. Never commit these.
 *
 *   node src/cli/run-ts.mjs weights-tools/make-random.ts --shape llava-7b --out /data/llava-random
 *   phaselens make-random --shape llava-7b --out …
 *
 * The values come from a small table of normals (see fastF16Chunks): plausible
 * magnitudes for timing, not a usable model. Every shape gets the llava-1.5 tokenizer;
 * with the InstructBLIP shapes' vocab of 32001 (the real one) its `<pad>` (32001) is out
 * of range, so feed prompts without padding.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { isMain, runStandalone } from '../src/cli/standalone.ts';
import { UserError } from '../src/errors.ts';
import { parseConfig } from '../src/io/config.ts';
import { expectedTensors } from '../src/io/expected-tensors.ts';
import { tensorBytes, type TensorSpec } from '../src/io/safetensors-write.ts';
import { writeInstructBlipProcessor, writeLlavaProcessor } from './processor-files.ts';
import { fromF16 } from '../src/gpu/half.ts';
import { fastF16Chunks } from './random-weights.ts';
import { writeWeights } from './write-checkpoint.ts';

/** The real llava-1.5-7b-hf config.json. */
async function llava7b(): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(new URL('./assets/llava-1.5-7b-hf/config.json', import.meta.url), 'utf8'));
}

/**
 * Salesforce/instructblip-vicuna-7b's shape: the HF defaults of InstructBlipVisionConfig
 * and InstructBlipQFormerConfig, Q-Former vocab 30523 (BERT + [DEC]) and Vicuna-7B with
 * vocab 32001, as convert_instructblip_original_to_pytorch.py builds it.
 */
async function instructblipVicuna7b(): Promise<Record<string, unknown>> {
  return {
    architectures: ['InstructBlipForConditionalGeneration'],
    model_type: 'instructblip',
    num_query_tokens: 32,
    qformer_config: { model_type: 'instructblip_qformer', vocab_size: 30523 },
    text_config: { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 32001, pad_token_id: 0, torch_dtype: 'float16' },
    torch_dtype: 'float16',
    use_decoder_only_language_model: true,
    vision_config: { model_type: 'instructblip_vision_model' },
  };
}

/**
 * A mid-size LLaVA for benchmarks on CPU adapters: the 7B layout scaled down (CLIP 512 wide,
 * 224 px → 256 patches; LLaMA 1024 wide, 8 layers; the real vocabulary), ~0.19 B parameters.
 */
async function llavaMid(): Promise<Record<string, unknown>> {
  const full = await llava7b();
  return {
    ...full,
    image_seq_length: 256,
    text_config: { ...(full.text_config as object), hidden_size: 1024, intermediate_size: 2752, num_attention_heads: 16, num_key_value_heads: 16, num_hidden_layers: 8 },
    vision_config: { ...(full.vision_config as object), hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 6, image_size: 224, patch_size: 14, projection_dim: 512 },
  };
}

/**
 * A mid-size InstructBLIP for benchmarks on CPU adapters, about llava-mid's cost: the
 * vicuna-7b layout scaled down (EVA 512 wide, 6 layers, 224 px → 256 patches; Q-Former
 * 384 wide, 4 layers, 32 queries, cross-attention every 2nd layer; llava-mid's LLaMA with
 * vocab 32001 and `<image>` = 32000), ~0.21 B parameters.
 */
/**
 * LLaVA-1.5-7B's depth at a CPU adapter's width: llava-mid's vision tower and a 32-layer
 * LLaMA 512 wide (the knockout sweep's cost depends on the layer count; ~0.1 B parameters).
 */
async function llavaDeep(): Promise<Record<string, unknown>> {
  const mid = await llavaMid();
  return { ...mid, text_config: { ...(mid.text_config as object), hidden_size: 512, intermediate_size: 1376, num_attention_heads: 8, num_key_value_heads: 8, num_hidden_layers: 32 } };
}

async function instructblipMid(): Promise<Record<string, unknown>> {
  const full = await instructblipVicuna7b();
  return {
    ...full,
    image_token_index: 32000,
    qformer_config: { ...(full.qformer_config as object), hidden_size: 384, intermediate_size: 1536, num_attention_heads: 6, num_hidden_layers: 4, cross_attention_frequency: 2, encoder_hidden_size: 512 },
    text_config: { ...(full.text_config as object), hidden_size: 1024, intermediate_size: 2752, num_attention_heads: 16, num_key_value_heads: 16, num_hidden_layers: 8 },
    vision_config: { ...(full.vision_config as object), hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 6, image_size: 224, patch_size: 14 },
  };
}

export const RANDOM_SHAPES: Record<string, () => Promise<Record<string, unknown>>> = {
  'llava-7b': llava7b,
  'llava-mid': llavaMid,
  'llava-deep': llavaDeep,
  'instructblip-vicuna-7b': instructblipVicuna7b,
  'instructblip-mid': instructblipMid,
};

export interface MakeRandomOptions {
  shape: string;
  out: string;
  seed?: number;
  /** Largest shard in bytes (default 5e9, HF's "5GB"). */
  maxShardBytes?: number;
  /** Weight dtype (default f16); f32 holds the same f16-representable values, for CPU baselines. */
  dtype?: 'f16' | 'f32';
}

/** fp16 chunks widened to fp32. */
function* widened(chunks: Iterable<Uint8Array>): Generator<Uint8Array> {
  for (const c of chunks) {
    const f = fromF16(new Uint16Array(c.buffer, c.byteOffset, c.byteLength / 2));
    yield new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  }
}

/** The config with every `torch_dtype` (top level and sub-configs) set to `dtype`. */
function withTorchDtype(json: Record<string, unknown>, dtype: string): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(json).map(([k, v]) => [k, k === 'torch_dtype' ? dtype : v && typeof v === 'object' && !Array.isArray(v) ? withTorchDtype(v as Record<string, unknown>, dtype) : v]),
  );
}

export async function makeRandom(opts: MakeRandomOptions): Promise<{ files: string[]; bytes: number }> {
  const make = RANDOM_SHAPES[opts.shape];
  if (!make) throw new UserError(`unknown --shape ${opts.shape} (known: ${Object.keys(RANDOM_SHAPES).join(', ')})`);
  const f32 = opts.dtype === 'f32';
  const json = f32 ? withTorchDtype(await make(), 'float32') : await make();
  const config = parseConfig(JSON.stringify(json), `${opts.shape} config`);
  const specs: TensorSpec[] = expectedTensors(config)
    .filter((t) => !t.optional)
    .map((t) => ({ name: t.name, shape: t.shape, dtype: f32 ? 'F32' : 'F16' }));
  await mkdir(opts.out, { recursive: true });
  const seed = opts.seed ?? 0;
  const files = await writeWeights(opts.out, specs, (t) => (f32 ? widened(fastF16Chunks(t.name, tensorBytes(t) / 4, seed)) : fastF16Chunks(t.name, tensorBytes(t) / 2, seed)), { maxShardBytes: opts.maxShardBytes ?? 5e9 });
  await writeFile(join(opts.out, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  const image = config.vision_config.image_size;
  if (config.model_type === 'llava') await writeLlavaProcessor(opts.out, image);
  else await writeInstructBlipProcessor(opts.out, image);
  return { files: ['config.json', ...files], bytes: specs.reduce((n, t) => n + tensorBytes(t), 0) };
}

/** Adds make-random's options and action to `cmd` (shared by the CLI and the script). */
export function configureMakeRandom(cmd: Command): Command {
  return cmd
    .description('write a full-size random fp16 checkpoint in HF layout (for GPU performance work; ~14 GB for 7B)')
    .addOption(new Option('--shape <name>', 'model shape').choices(Object.keys(RANDOM_SHAPES)).makeOptionMandatory())
    .requiredOption('--out <dir>', 'output folder (created)')
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .option('--max-shard-gb <gb>', 'largest shard in GB', parseFloat, 5)
    .addOption(new Option('--dtype <dtype>', 'weight dtype (f32: the same values widened)').choices(['f16', 'f32']).default('f16'))
    .action(async (o: { shape: string; out: string; seed: number; maxShardGb: number; dtype: 'f16' | 'f32' }) => {
      const t0 = performance.now();
      const r = await makeRandom({ ...o, maxShardBytes: o.maxShardGb * 1e9 });
      const s = (performance.now() - t0) / 1000;
      console.log(`wrote ${o.out}: ${(r.bytes / 1e9).toFixed(2)} GB of ${o.dtype} weights in ${r.files.filter((f) => f.endsWith('.safetensors')).length} shard(s), ${s.toFixed(0)} s`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configureMakeRandom(new Command('make-random')));
