/**
 * Checkpoint streaming benchmark: how fast `uploadTensor` moves a safetensors
 * checkpoint from disk to GPU buffers, against `cat FILE > /dev/null` on the same
 * files in the same run, and how much host memory it takes while doing so.
 *
 * A ≥ 1 GB fp16 checkpoint (tensors up to ~120 MB, two shards) is generated in a
 * temp dir and deleted at the end. Nothing is dropped from the page cache: the files
 * were just written, so both readers see the same (cached) state. Each reader runs
 * twice, cat → load and load → cat, and the best of each counts.
 *
 * Records:
 * - safetensors-stream: MB/s of uploadTensor (all tensors, until the GPU has the
 *   data) vs cat; target ratio ≥ 0.7. cat reads into one cache-hot 128 KB buffer,
 *   while every loader must land the bytes in fresh memory (new GPU buffers; on
 *   lavapipe those are new host pages), so the note also gives the speed of plain
 *   reads into fresh host buffers as the practical ceiling.
 * - load-rss: peak growth of the process RSS during the load (sampled every 2 ms and
 *   at every chunk) vs the largest tensor; target ≤ largest + 256 MB. On a software
 *   adapter (lavapipe) GPU buffers live in host memory, so the buffer being filled is
 *   part of the peak; each buffer is released once the GPU has its data.
 *
 *   node src/cli/run-ts.mjs bench/load.ts
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMain } from '../src/cli/standalone.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { Checkpoint } from '../src/io/checkpoint.ts';
import type { TensorSpec } from '../src/io/safetensors-write.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { uploadTensor } from '../src/io/upload.ts';
import { fastF16Chunks } from '../weights-tools/random-weights.ts';
import { writeWeights } from '../weights-tools/write-checkpoint.ts';
import type { BenchRecord } from './record.ts';

export type { BenchRecord };

export interface LoadBenchOptions {
  /** Total checkpoint size to generate (default 1.1e9 bytes). */
  totalBytes?: number;
  /** Largest tensor (default 120e6 bytes). */
  maxTensorBytes?: number;
  /** Where to put the temp checkpoint (default: the OS temp dir). */
  dir?: string;
  device?: GPUDevice;
}

const MB = 1e6;
const COLS = 4096;

/** fp16 [rows, 4096] tensors: as many of the largest size as fit, then 32 MB ones up to the total. */
function tensorList(totalBytes: number, maxTensorBytes: number): TensorSpec[] {
  const big = Math.floor(maxTensorBytes / (COLS * 2));
  const specs: TensorSpec[] = [];
  let bytes = 0;
  for (let i = 0; bytes + big * COLS * 2 <= totalBytes * 0.9; i++, bytes += big * COLS * 2) specs.push({ name: `big.${i}.weight`, dtype: 'F16', shape: [big, COLS] });
  for (let i = 0; bytes < totalBytes; i++, bytes += COLS * COLS * 2) specs.push({ name: `mid.${i}.weight`, dtype: 'F16', shape: [COLS, COLS] });
  return specs;
}

async function catSeconds(files: string[]): Promise<number> {
  const devnull = await open('/dev/null', 'w');
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const p = spawn('cat', files, { stdio: ['ignore', devnull.fd, 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cat exited with ${code}`))));
  });
  const s = (performance.now() - t0) / 1000;
  await devnull.close();
  return s;
}

/** Seconds to read every tensor into a newly allocated host buffer (no GPU). */
async function freshReadSeconds(dir: string): Promise<number> {
  const ckpt = await Checkpoint.open(nodeDirectory(dir));
  const t0 = performance.now();
  for (const name of ckpt.tensors.keys()) await ckpt.readTensor(name);
  const s = (performance.now() - t0) / 1000;
  await ckpt.close();
  return s;
}

/** Streams every tensor to the GPU; returns seconds and the peak RSS growth in bytes. */
async function loadSeconds(device: GPUDevice, dir: string): Promise<{ seconds: number; peakRss: number }> {
  const before = process.memoryUsage.rss();
  let peak = before;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage.rss());
  };
  const timer = setInterval(sample, 2);
  const t0 = performance.now();
  const ckpt = await Checkpoint.open(nodeDirectory(dir));
  for (const name of ckpt.tensors.keys()) {
    const t = await uploadTensor(device, ckpt, name);
    sample();
    await device.queue.onSubmittedWorkDone();
    sample();
    for (const p of t.parts) p.buffer.destroy();
  }
  await ckpt.close();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  sample();
  return { seconds, peakRss: peak - before };
}

export async function benchLoad(opts: LoadBenchOptions = {}): Promise<BenchRecord[]> {
  const totalBytes = opts.totalBytes ?? 1.1e9;
  const maxTensorBytes = opts.maxTensorBytes ?? 120e6;
  const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'phaselens-bench-load-'));
  try {
    const specs = tensorList(totalBytes, maxTensorBytes);
    const files = (await writeWeights(dir, specs, (t) => fastF16Chunks(t.name, t.shape, 1), { maxShardBytes: totalBytes / 2 + maxTensorBytes }))
      .filter((f) => f.endsWith('.safetensors'))
      .map((f) => join(dir, f));
    const bytes = specs.reduce((n, t) => n + t.shape[0] * t.shape[1] * 2, 0);
    const largest = Math.max(...specs.map((t) => t.shape[0] * t.shape[1] * 2));
    const device = opts.device ?? (await createNodeGpu()).device;

    const cat1 = await catSeconds(files);
    const load1 = await loadSeconds(device, dir);
    const load2 = await loadSeconds(device, dir);
    const cat2 = await catSeconds(files);
    const fresh = Math.min(await freshReadSeconds(dir), await freshReadSeconds(dir));
    const cat = Math.min(cat1, cat2);
    const load = load1.seconds < load2.seconds ? load1 : load2;
    const peakRss = Math.max(load1.peakRss, load2.peakRss);

    const ours = bytes / MB / load.seconds;
    const baseline = bytes / MB / cat;
    return [
      { case: 'safetensors-stream', shape: [bytes], dtype: 'f16', unit: 'MB/s', ours, baseline, ratio: ours / baseline, note: `${specs.length} tensors in ${files.length} shards, page cache warm, best of 2 each; plain reads into fresh host buffers: ${(bytes / MB / fresh).toFixed(0)} MB/s` },
      { case: 'load-rss', shape: [bytes], dtype: 'f16', unit: 'MB', ours: peakRss / MB, baseline: largest / MB, ratio: peakRss / largest, note: 'peak RSS growth during the load vs the largest tensor' },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const records = await benchLoad();
  for (const r of records) console.log(`${r.case.padEnd(20)} ours ${r.ours.toFixed(1)} ${r.unit}  baseline ${r.baseline.toFixed(1)} ${r.unit}  ratio ${r.ratio.toFixed(2)}  (${r.note})`);
  console.log(JSON.stringify(records));
  process.exit(0);
}
