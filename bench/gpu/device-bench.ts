/**
 * phaselens's side of the one-shot GPU check (bench/gpu/run.sh): one checkpoint, one
 * image + prompt, timed the way bench/models.ts times it, written as JSON for
 * bench/gpu/summary.py. Bundled by pack.ts into carry/app/device-bench.mjs; here it
 * also runs through tsx:
 *
 *   node src/cli/run-ts.mjs bench/gpu/device-bench.ts --model DIR --image FILE
 *        [--prompt Q] [--mode time|profile] [--reps 3] [--new-tokens 32]
 *        [--out RESULT.json] [--inputs-out PREFIX] [--metrics-out METRICS.json]
 *        [--profile-out TABLE.txt] [--trace TRACE.json] [--kernels auto|cpu|gpu]
 *        [--precision f32|f16] [--peak-tflops T] [--peak-tensor-tflops T] [--peak-gbs G]
 *
 * --precision: as the CLI's (src/ops/precision.ts): the model is loaded with it, and the
 *   self-checks run on the matmuls' form at it (the f32-exact or the ONE_PRODUCT form),
 *   as `openGpu` does; run.sh runs this once per precision.
 *
 * --mode time (no profiler, which would add a timestamp query per dispatch):
 *   load_s       weights streamed from disk to the GPU (the page cache holds them after make-random)
 *   prefill_s    median of --reps forwards (image + prompt → final hidden states) after one warm-up
 *   decode       greedy tokens/s with the KV cache over --new-tokens tokens (EOS ignored,
 *                so random weights decode the full count; the first token is the prefill's)
 *   analyze_s    median of --reps `analyze` forwards with every probe (contextualization,
 *                norm attention at the last token, LogitLens top-5 on every visual token at
 *                every layer) after one warm-up, results read back to the host
 *   peak_gpu_bytes  the largest total of live phaselens buffers (weights included)
 * Also: the self-check lines, the variants picked for the 7B's shapes (matmul and attention;
 * for 'sgmat' its tiles, stages and K splits at the model's projections), the precision.
 * --mode inputs: only --inputs-out (no GPU), for the HF side when phaselens cannot run.
 * --mode profile: the same prefill and analyze once each after a warm-up, plus 8 decode
 *   tokens, with the profiler on; the per-kernel table (steady dispatches, % of peak) goes
 *   to --profile-out and stdout, the Chrome trace to --trace.
 *
 * --inputs-out PREFIX writes PREFIX.json ({ids, qformer_ids, pixel_shape, image:[s,e], text,
 * query, bos}) and PREFIX.f32 (pixel_values, little-endian f32, channels first) so the HF
 * side (hf_bench.py) runs on exactly these inputs. --metrics-out writes the analyze
 * result (the per-image metrics JSON of `phaselens analyze`).
 * Exit status: 0 when every step ran, 1 when one failed (its error is in the JSON), 2 on
 * bad arguments.
 */
import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { analyzeImage } from '../../src/analysis/analyze-image.ts';
import { parseKernelChoice } from '../../src/gpu/adapter-class.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { checkMatmulVariants } from '../../src/ops/matmul-check.ts';
import { adapterMatrixShape, pickMatmulKernel, tiledTile } from '../../src/ops/linear.ts';
import { sgmatConfig, sgmatSplits } from '../../src/ops/matmul-sgmat.ts';
import { PRECISIONS, type Precision } from '../../src/ops/precision.ts';
import { pickVariant } from '../../src/ops/attention.ts';
import { adapterPeak } from '../../src/gpu/peaks.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { generate } from '../../src/models/generate.ts';
import { openModel } from '../../src/models/registry.ts';
import type { PromptSpec, Vlm, VlmInput } from '../../src/models/vlm.ts';
import { writeInputs } from '../hf.ts';

export const DEFAULT_QUESTION = 'Describe the image in detail.';

interface Options {
  model: string;
  image: string;
  prompt: string;
  mode: 'time' | 'profile' | 'inputs';
  reps: number;
  newTokens: number;
  out?: string;
  inputsOut?: string;
  metricsOut?: string;
  profileOut?: string;
  trace?: string;
  kernels?: string;
  precision: Precision;
  peakTflops?: number;
  peakTensorTflops?: number;
  peakGbs?: number;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function positive(v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed(n: number, f: () => Promise<void>): Promise<number[]> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    t.push((performance.now() - t0) / 1000);
  }
  return t;
}

/**
 * How the prefill matmuls of the 7B run on this device (after the self-checks): per
 * projection [M, N, K] at `seq` tokens (the LM's) and 577 (CLIP-L's), the kernel and, for
 * 'sgmat', its tile, stages and the K split; for 'tiled', its tile rows.
 */
function matmulPlan(gpu: Gpu, seq: number, precision: Precision): Record<string, string> {
  const shapes: Record<string, [number, number, number]> = {
    'lm q/k/v/o': [seq, 4096, 4096], 'lm gate/up': [seq, 11008, 4096], 'lm down': [seq, 4096, 11008],
    'clip q/k/v/o': [577, 1024, 1024], 'clip fc1': [577, 4096, 1024], 'clip fc2': [577, 1024, 4096],
  };
  const units = adapterPeak(gpu.adapterName)?.units;
  const plan: Record<string, string> = {};
  for (const [name, [M, N, K]] of Object.entries(shapes)) {
    const kernel = pickMatmulKernel(gpu, M, 'f16', precision);
    const shape = adapterMatrixShape(gpu);
    const cfg = kernel === 'sgmat' && shape ? sgmatConfig(shape, gpu.limits, M, precision === 'f16') : null;
    if (cfg) plan[name] = `sgmat ${cfg.TM}x${cfg.TN} ${cfg.defines.STAGES} stage(s) split K ${sgmatSplits(units, M, N, K, cfg)}`;
    else if (kernel === 'tiled' || kernel === 'tiled16') plan[name] = `${kernel} ${tiledTile(M, N, units).TILE_M}x64`;
    else plan[name] = kernel;
  }
  return plan;
}

/** The model with EOS switched off, so greedy decoding of random weights runs the full count. */
function ignoringEos(m: Vlm): Vlm {
  return new Proxy(m, {
    get(target, prop) {
      if (prop === 'lm') return { ...target.lm, eos_token_id: -1 };
      if (prop === 'tokenizer') return undefined;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

export async function deviceBench(o: Options): Promise<{ result: Record<string, unknown>; failed: boolean }> {
  const files = await openModel(nodeDirectory(o.model));
  const spec: PromptSpec = files.family === 'llava' ? { prompt: o.prompt, chat: true } : { prompt: o.prompt };
  const image = readImageFile(o.image);
  const x = files.prepare(spec, image, { padToSquare: false });
  if (o.inputsOut) writeInputs(o.inputsOut, x);
  if (o.mode === 'inputs') return { result: { side: 'phaselens', mode: 'inputs', seq: x.ids.length }, failed: false };
  const kernels = o.kernels !== undefined ? parseKernelChoice(o.kernels) : undefined;
  const gpu: Gpu = await createNodeGpu({ profile: o.mode === 'profile', kernels });
  // as every phaselens command does: tiled16 and sgmat are used only once they pass the self-check, in their form at the precision
  const selfChecks = await checkMatmulVariants(gpu, (line) => console.error(line), o.precision);
  const errors: Record<string, string> = {};
  const result: Record<string, unknown> = {
    side: 'phaselens',
    mode: o.mode,
    adapter: gpu.adapterName,
    adapter_class: gpu.adapterClass.adapterClass,
    kernels: gpu.kernels,
    features: gpu.features,
    precision: o.precision,
    self_checks: selfChecks,
    // what the 7B's f16 weights and LLaMA heads (D = 128) get here, after the self-checks
    picked: {
      matmul_prefill: pickMatmulKernel(gpu, x.ids.length, 'f16', o.precision),
      matmul_decode: pickMatmulKernel(gpu, 1, 'f16', o.precision),
      attention_prefill: pickVariant(gpu, x.ids.length, 128),
      attention_decode: pickVariant(gpu, 1, 128),
    },
    matmul_plan: matmulPlan(gpu, x.ids.length, o.precision),
    model: o.model,
    family: files.family,
    prompt: o.prompt,
    seq: x.ids.length,
    image_span: x.groups.image,
    errors,
  };
  const t0 = performance.now();
  let m: Vlm;
  try {
    m = await files.load(gpu, { precision: o.precision });
  } catch (e) {
    // e.g. precision f16 on a device without shader-f16: the JSON says so, the other precision's run still counts
    errors.load = e instanceof Error ? e.message : String(e);
    console.error(`device-bench: load failed: ${errors.load}`);
    if (o.out) writeFileSync(o.out, JSON.stringify(result, null, 1) + '\n');
    return { result, failed: true };
  }
  result.load_s = (performance.now() - t0) / 1000;
  console.error(`device-bench: ${files.family}, ${x.ids.length} tokens, weights loaded in ${(result.load_s as number).toFixed(1)} s on ${gpu.adapterName} (${gpu.kernels} kernels, precision ${o.precision})`);

  // the JSON is rewritten after every step, so a run stopped by run.sh's timeout keeps what it measured
  const save = () => {
    result.peak_gpu_bytes = gpu.peakAllocated;
    if (o.out) writeFileSync(o.out, JSON.stringify(result, null, 1) + '\n');
  };
  const step = async (name: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      errors[name] = e instanceof Error ? e.message : String(e);
      console.error(`device-bench: ${name} failed: ${errors[name]}`);
    }
    save();
  };
  save();
  const forward = async () => {
    gpu.release(m.forward(gpu, x));
    await gpu.sync();
  };
  const item = { id: 'bench', image: o.image, captions: [] };
  const analyzeOpts = { prompt: spec, dropBos: false, topk: 5, smooth: 1, padToSquare: false };
  // slow kernels (a warm-up over 10 s) get one timed repetition, to stay inside run.sh's caps
  let reps = o.mode === 'profile' ? 1 : o.reps;

  await step('prefill', async () => {
    const warm = await timed(1, forward);
    if (warm[0] > 10) reps = 1;
    const t = await timed(reps, forward);
    result.prefill_s = { median: median(t), all: t, warmup: warm[0] };
  });
  await step('decode', async () => {
    const n = o.mode === 'profile' ? Math.min(8, o.newTokens) : o.newTokens;
    const g = await generate(gpu, ignoringEos(m), x, n);
    const decoded = g.tokens.length - 1;
    result.decode = { tokens: decoded, s: g.decodeMs / 1000, tok_s: decoded > 0 ? decoded / (g.decodeMs / 1000) : null, prefill_in_generate_s: g.prefillMs / 1000, ids: g.tokens };
  });
  await step('analyze', async () => {
    let metrics: Record<string, unknown> = {};
    const run = async () => {
      metrics = await analyzeImage(gpu, m, item, image, analyzeOpts);
    };
    const warm = await timed(1, run);
    const t = await timed(reps, run);
    result.analyze_s = { median: median(t), all: t, warmup: warm[0] };
    if (o.metricsOut) writeFileSync(o.metricsOut, JSON.stringify(metrics) + '\n');
  });
  if (o.mode === 'profile' && gpu.profiler) {
    await gpu.sync();
    const peak = adapterPeak(gpu.adapterName, { tflops: o.peakTflops, tensorTflops: o.peakTensorTflops, gbs: o.peakGbs });
    const table = gpu.profiler.table(gpu.pipelines.created, peak);
    console.log(table);
    if (o.profileOut) writeFileSync(o.profileOut, `${gpu.adapterName}, precision ${o.precision}: prefill + analyze (after a warm-up of each) + 8 decode tokens\n\n${table}\n`);
    if (o.trace) writeFileSync(o.trace, JSON.stringify(gpu.profiler.trace()));
    result.profile_summary = gpu.profiler.summary();
  }
  save();
  return { result, failed: Object.keys(errors).length > 0 };
}

export function command(): Command {
  return new Command('device-bench')
    .description("phaselens's side of bench/gpu/run.sh: prefill, decode and analyze timings (or the kernel profile) of one checkpoint")
    .requiredOption('--model <dir>', 'checkpoint folder')
    .requiredOption('--image <file>', 'PNG or JPEG')
    .option('--prompt <text>', 'the question (LLaVA: in the chat template)', DEFAULT_QUESTION)
    .option('--mode <mode>', 'time | profile | inputs (only --inputs-out, no GPU)', (v) => {
      if (v !== 'time' && v !== 'profile' && v !== 'inputs') throw new InvalidArgumentError('must be time, profile or inputs');
      return v;
    }, 'time')
    .option('--reps <n>', 'timed repetitions after the warm-up', positiveInt, 3)
    .option('--new-tokens <n>', 'decode tokens', positiveInt, 32)
    .option('--out <file>', 'result JSON')
    .option('--inputs-out <prefix>', 'write PREFIX.json and PREFIX.f32 (the prepared inputs) for hf_bench.py')
    .option('--metrics-out <file>', "the analyze result (phaselens analyze's per-image metrics JSON)")
    .option('--profile-out <file>', 'the per-kernel table (--mode profile)')
    .option('--trace <file>', 'Chrome trace (--mode profile)')
    .option('--kernels <class>', 'auto | cpu | gpu')
    .option('--precision <p>', 'f32 | f16: the matmuls\' precision, as the CLI\'s --precision', (v) => {
      if (!(PRECISIONS as readonly string[]).includes(v)) throw new InvalidArgumentError('must be f32 or f16');
      return v;
    }, 'f32')
    .option('--peak-tflops <t>', 'FP32 peak for the % of peak columns', positive)
    .option('--peak-tensor-tflops <t>', 'dense FP16 tensor-core peak for the % of peak of tensor-core kernels', positive)
    .option('--peak-gbs <g>', 'memory bandwidth in GB/s for the % of peak columns', positive)
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2))
    .action(async (o: Options) => {
      const { failed } = await deviceBench(o);
      process.exit(failed ? 1 : 0);
    });
}

const self = process.argv[1] ?? '';
if (/device-bench\.(ts|mjs)$/.test(self)) await command().parseAsync(process.argv);
