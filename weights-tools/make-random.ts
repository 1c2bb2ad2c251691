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
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { isMain, runStandalone } from '../src/cli/standalone.ts';
import { UserError } from '../src/errors.ts';
import { expectedTensors, FAMILIES, parseConfig, type FamilyEntry } from '../src/models/registry.ts';
import { tensorBytes, type TensorSpec } from '../src/io/safetensors-write.ts';
import { writeProcessorFiles } from './processor-files.ts';
import { fromF16 } from '../src/gpu/half.ts';
import { fastF16Chunks } from './random-weights.ts';
import { writeWeights } from './write-checkpoint.ts';

/** Every family's full-size shapes (models/registry.ts), by name. */
export const RANDOM_SHAPES: Record<string, { family: FamilyEntry; config: () => Record<string, unknown> }> = Object.fromEntries(
  FAMILIES.flatMap((family) => Object.entries(family.shapes).map(([name, config]) => [name, { family, config }])),
);

export interface MakeRandomOptions {
  shape: string;
  out: string;
  seed?: number;
  /** Largest shard in bytes (default 5e9, HF's "5GB"). */
  maxShardBytes?: number;
  /** Weight dtype (default f16); f32 holds the same f16-representable values, for CPU baselines. */
  dtype?: 'f16' | 'f32';
  /** The language model's depth instead of the shape's (the bench: memory at two depths). */
  layers?: number;
}

/** The config with the LM's num_hidden_layers (in text_config, or at the top for Chameleon) set to `layers`. */
function withLayers(json: Record<string, unknown>, layers: number): Record<string, unknown> {
  const text = json.text_config as Record<string, unknown> | undefined;
  return text ? { ...json, text_config: { ...text, num_hidden_layers: layers } } : { ...json, num_hidden_layers: layers };
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
  if (opts.layers !== undefined && !(Number.isInteger(opts.layers) && opts.layers >= 1)) throw new UserError(`--layers must be a positive integer, got ${opts.layers}`);
  const shaped = opts.layers === undefined ? make.config() : withLayers(make.config(), opts.layers);
  const json = f32 ? withTorchDtype(shaped, 'float32') : shaped;
  const config = parseConfig(JSON.stringify(json), `${opts.shape} config`);
  const specs: TensorSpec[] = expectedTensors(config)
    .filter((t) => !t.optional || t.generated)
    .map((t) => ({ name: t.name, shape: t.shape, dtype: f32 ? 'F32' : 'F16' }));
  await mkdir(opts.out, { recursive: true });
  // processor files first, so a missing asset is reported before gigabytes are written;
  // config.json last, so an interrupted run leaves no folder that looks complete
  await writeProcessorFiles(opts.out, make.family, config);
  const seed = opts.seed ?? 0;
  const files = await writeWeights(opts.out, specs, (t) => (f32 ? widened(fastF16Chunks(t.name, t.shape, seed)) : fastF16Chunks(t.name, t.shape, seed)), { maxShardBytes: opts.maxShardBytes ?? 5e9 });
  await writeFile(join(opts.out, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  return { files: ['config.json', ...files], bytes: specs.reduce((n, t) => n + tensorBytes(t), 0) };
}

/** Adds make-random's options and action to `cmd` (shared by the CLI and the script). */
export function configureMakeRandom(cmd: Command): Command {
  return cmd
    .description('write a full-size random fp16 checkpoint in HF layout (for GPU performance work; ~14 GB for 7B)')
    .addOption(new Option('--shape <name>', `model shape: ${Object.entries(RANDOM_SHAPES).map(([n, s]) => `${n} (${s.family.modelType})`).join(', ')}`).choices(Object.keys(RANDOM_SHAPES)).makeOptionMandatory())
    .requiredOption('--out <dir>', 'output folder (created)')
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .option('--max-shard-gb <gb>', 'largest shard in GB', parseFloat, 5)
    .addOption(new Option('--dtype <dtype>', 'weight dtype (f32: the same values widened)').choices(['f16', 'f32']).default('f16'))
    .option('--layers <n>', "the language model's depth instead of the shape's", (v) => parseInt(v, 10))
    .action(async (o: { shape: string; out: string; seed: number; maxShardGb: number; dtype: 'f16' | 'f32'; layers?: number }) => {
      const t0 = performance.now();
      const r = await makeRandom({ ...o, maxShardBytes: o.maxShardGb * 1e9 });
      const s = (performance.now() - t0) / 1000;
      console.log(`wrote ${o.out}: ${(r.bytes / 1e9).toFixed(2)} GB of ${o.dtype} weights in ${r.files.filter((f) => f.endsWith('.safetensors')).length} shard(s), ${s.toFixed(0)} s`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configureMakeRandom(new Command('make-random')));
