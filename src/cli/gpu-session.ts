/**
 * What every GPU command shares: `--profile [TRACE]` and `--kernels`, creating the device,
 * a progress line while weights stream in, and the profile table + Chrome trace at the end.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Gpu } from '../gpu/context.ts';
import { KERNELS_ENV, parseKernelChoice } from '../gpu/adapter-class.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { adapterPeak } from '../gpu/peaks.ts';
import { checkMatmulVariants } from '../ops/matmul-check.ts';
import { PRECISIONS, type Precision } from '../ops/precision.ts';
import { UserError } from '../errors.ts';
import { checkOutputFile } from './output-paths.ts';

export interface GpuCliOptions {
  profile?: string | boolean;
  kernels?: string;
  peakTflops?: string;
  peakTensorTflops?: string;
  peakGbs?: string;
  /** --precision, where the command has it: the self-check checks the matmuls' form at it. */
  precision?: string;
}

export function addGpuOptions(cmd: Command): Command {
  return cmd
    .option('--profile [trace]', 'time every kernel; print a per-kernel table and write a Chrome trace (default phaselens-trace.json)')
    .option('--peak-tflops <t>', "the adapter's FP32 peak, for the profile's % of peak (default: a table of common GPUs)")
    .option('--peak-tensor-tflops <t>', "the adapter's dense FP16 matrix-unit (tensor-core) peak, for the % of peak of tensor-core kernels")
    .option('--peak-gbs <g>', "the adapter's memory bandwidth in GB/s, for the profile's % of peak")
    .option('--kernels <class>', `kernel variants: auto (by adapter class), cpu (software adapters) or gpu; default ${KERNELS_ENV} or auto`);
}

export async function openGpu(o: GpuCliOptions): Promise<Gpu> {
  const kernels = o.kernels !== undefined ? parseKernelChoice(o.kernels) : undefined;
  peakOf(o, ''); // a bad --peak-* fails now, not after the run
  const gpu = await createNodeGpu({ profile: !!o.profile, kernels });
  const c = gpu.adapterClass;
  console.error(
    `phaselens: GPU ${gpu.adapterName} (${c.adapterClass}: ${c.evidence}; ${gpu.kernels} kernels${gpu.kernelsForced ? ', forced' : ''}; ` +
      `shader-f16 ${yes(gpu.features.f16)}, timestamp-query ${yes(gpu.features.timestamps)}, subgroups ${yes(gpu.features.subgroups)})`,
  );
  for (const line of await checkMatmulVariants(gpu, (w) => console.error(w), parsePrecision(o.precision))) console.error(`phaselens: ${line}`);
  return gpu;
}

function tracePath(o: GpuCliOptions): string {
  return typeof o.profile === 'string' ? o.profile : 'phaselens-trace.json';
}

/** `--profile TRACE` checked before any work (src/cli/output-paths.ts). */
export function checkProfilePath(o: GpuCliOptions): void {
  if (o.profile) checkOutputFile('--profile', tracePath(o));
}

export async function finishProfile(gpu: Gpu, o: GpuCliOptions): Promise<void> {
  if (!gpu.profiler) return;
  await gpu.sync();
  const path = tracePath(o);
  writeFileSync(path, JSON.stringify(gpu.profiler.trace()));
  console.log(`\n${gpu.profiler.table(gpu.pipelines.created, peakOf(o, gpu.adapterName))}\nChrome trace written to ${path} (open in https://ui.perfetto.dev or chrome://tracing)`);
}

export function loadProgress(label: string): (done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  return (done, total) => {
    if (tty) process.stderr.write(`\r${label}: ${done}/${total} tensors${done === total ? '\n' : ''}`);
    else if (done === total) process.stderr.write(`${label}: ${total} tensors\n`);
  };
}

/** `--precision f32|f16`: the matmuls' precision (src/ops/precision.ts; default f32). */
export function parsePrecision(v: string | undefined): Precision | undefined {
  if (v === undefined) return undefined;
  if (!(PRECISIONS as readonly string[]).includes(v)) throw new UserError(`--precision must be f32 or f16, got ${v}`);
  return v as Precision;
}

/** `--dtype f32|f16`: the weights' dtype on the GPU (default: as the checkpoint stores them). */
export function parseDtype(v: string | undefined): 'f32' | 'f16' | undefined {
  if (v === undefined) return undefined;
  if (v !== 'f32' && v !== 'f16') throw new UserError(`--dtype must be f32 or f16, got ${v}`);
  return v;
}

function peakOf(o: GpuCliOptions, adapterName: string) {
  return adapterPeak(adapterName, {
    tflops: positive('--peak-tflops', o.peakTflops),
    tensorTflops: positive('--peak-tensor-tflops', o.peakTensorTflops),
    gbs: positive('--peak-gbs', o.peakGbs),
  });
}

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new UserError(`${name} must be a positive number, got ${v}`);
  return n;
}

function yes(b: boolean): string {
  return b ? 'yes' : 'no';
}
