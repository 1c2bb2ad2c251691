/**
 * Kernel benchmarks, llm.c style: every case first validates the GPU result against the
 * baseline's own result on the same inputs, and only then times both.
 *
 *   matmul     y = x·Wᵀ (src/ops/linear.ts) vs OpenBLAS cblas_sgemm (bench/native/sgemm.c)
 *              with the same layout; shape [M, N, K]; dtype f32, or f16 = f16 weights (the
 *              baseline multiplies the same f16-rounded weights in f32). Every variant that
 *              can run the shape here is timed, CPU-class ones on the adapter's own device and
 *              GPU-class ones on a device forced to GPU-class kernels; the note says which
 *              class picks it (a software adapter runs the GPU variants for correctness, not
 *              speed).
 *   attention  softmax(q kᵀ/√D [+ causal mask]) v (src/ops/attention.ts) vs the same math
 *              in PyTorch (bench/torch_attention.py); shape [Sq, Skv, H, D]; every variant,
 *              the same way.
 *
 * Rates: GFLOP/s with the same FLOP count on both sides (matmul 2·M·N·K; attention
 * 4·H·D·(visible query–key pairs), so a causal case counts only the unmasked half), so
 * ratio = baseline time / our time. Our time: wall clock around `gpu.sync()`, after
 * warm-up runs, median of `reps` samples; a sample repeats the dispatch until it spans
 * ≥ 20 ms so short kernels are not dominated by submit/readback latency.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Gpu } from '../src/gpu/context.ts';
import { roundF16, toF16 } from '../src/gpu/half.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { attention, DECODE_MAX_ROWS, pickVariant, visiblePairs, type AttentionVariant } from '../src/ops/attention.ts';
import { randn, relErr } from '../test/helpers/data.ts';
import { kernelRefusal, linear, MATMUL_KERNELS, pickMatmulKernel, type MatmulKernel } from '../src/ops/linear.ts';
import { hfPython } from './hf.ts';
import { sgemmBench, sgemmRun } from './native.ts';
import { record, type BenchRecord } from './record.ts';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
/** torch for the attention baseline: $PHASELENS_PYTHON, else the venv of .ci/hf-venv.sh. */
const python = () => process.env.PHASELENS_PYTHON ?? hfPython();

export interface KernelBenchOptions {
  /** Timed samples per side (default 5). */
  reps?: number;
  /** Untimed runs before timing (default 2). */
  warmup?: number;
  /** Small shapes only: a smoke test of the suite, not a measurement. */
  quick?: boolean;
  /** Called with each record as soon as it is measured. */
  onRecord?: (r: BenchRecord) => void;
  /** Time only this matmul variant (default: every variant that can run the shape). */
  matmulKernel?: MatmulKernel;
  /** Time only this attention variant (default: every variant that can run the shape). */
  attentionVariant?: AttentionVariant;
  /** A device of the same adapter with GPU-class kernels forced, for the GPU-class variants. */
  gpuClass?: Gpu;
}

/** Which class's picker chooses `variant` for this shape, for the notes. */
function pickedBy(picks: { cpu: string; gpu?: string }, variant: string): string {
  const by = [picks.cpu === variant && 'cpu', picks.gpu === variant && 'gpu'].filter(Boolean);
  return by.length ? `picked by the ${by.join(' and ')} class` : 'forced (a fallback here)';
}

export class ValidationError extends Error {}

// ---- shared helpers ----------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Median milliseconds of one call of `fn` (which records GPU work and returns the tensor it
 * allocated), measured around `gpu.sync()`.
 */
export async function timeGpu(gpu: Gpu, fn: () => Tensor, warmup: number, reps: number, minSampleMs = 20): Promise<number> {
  const once = async (n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) gpu.release(fn());
    await gpu.sync();
    return performance.now() - t;
  };
  let single = Infinity;
  for (let i = 0; i < Math.max(1, warmup); i++) single = Math.min(single, await once(1));
  const inner = Math.max(1, Math.min(1000, Math.ceil(minSampleMs / Math.max(single, 1e-3))));
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) samples.push((await once(inner)) / inner);
  return median(samples);
}

function check(what: string, err: number, tol: number): void {
  if (!(err <= tol)) throw new ValidationError(`${what}: GPU result differs from the baseline: relErr ${err.toExponential(2)} > ${tol}`);
}

// ---- matmul ------------------------------------------------------------------------------

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  dtype: 'f32' | 'f16';
}

/**
 * LLaMA-like shapes scaled to a 2-core machine: 600 tokens (a LLaVA prompt with its 576
 * image tokens) through square projections of width 1024 / 2048 / 4096, f32 and f16
 * weights, and one decoding step (M = 1) at width 4096.
 */
export function matmulShapes(quick = false): MatmulShape[] {
  if (quick) return [{ M: 40, N: 96, K: 128, dtype: 'f32' }, { M: 40, N: 96, K: 128, dtype: 'f16' }];
  const out: MatmulShape[] = [];
  for (const dtype of ['f32', 'f16'] as const) {
    for (const d of [1024, 2048, 4096]) out.push({ M: 600, N: d, K: d, dtype });
    out.push({ M: 1, N: 4096, K: 4096, dtype });
  }
  return out;
}

/**
 * relErr tolerance against OpenBLAS: both accumulate in f32 but in different orders;
 * over K ≤ 4096 terms of size ≤ 0.5 the difference stays near 1e-6 of the output scale.
 */
const MATMUL_TOL = 1e-4;

export async function benchMatmul(gpu: Gpu, opts: KernelBenchOptions = {}): Promise<BenchRecord[]> {
  const reps = opts.reps ?? 5;
  const warmup = opts.warmup ?? 2;
  const out: BenchRecord[] = [];
  for (const { M, N, K, dtype } of matmulShapes(opts.quick)) {
    const x = randn(M * K, M + 7 * K);
    const w = randn(N * K, N + 13 * K, 0.5);
    const want = await sgemmRun(x, dtype === 'f16' ? roundF16(w) : w, M, N, K);
    const blas = await sgemmBench(M, N, K, warmup, reps);
    const picks = { cpu: pickMatmulKernel(gpu, M, dtype), gpu: opts.gpuClass && pickMatmulKernel(opts.gpuClass, M, dtype) };
    const variants = opts.matmulKernel ? [opts.matmulKernel] : MATMUL_KERNELS;
    for (const kernel of variants) {
      // CPU-class variants on the adapter's device, the others on the GPU-class one
      const dev = kernel === 'subgroup' || kernel === 'tile4x4' || !opts.gpuClass ? gpu : opts.gpuClass;
      if (kernelRefusal(dev, kernel, M, dtype)) continue;
      const xt = dev.upload(x, [M, K], 'x');
      const wt = dtype === 'f16' ? dev.upload(toF16(w), [N, K], 'w', 'f16') : dev.upload(w, [N, K], 'w');
      try {
        const y = linear(dev, xt, wt, { kernel });
        const got = await dev.readF32(y);
        dev.release(y);
        check(`matmul ${kernel} [${M}, ${N}, ${K}] ${dtype}`, relErr(got, want), MATMUL_TOL);
        const ms = await timeGpu(dev, () => linear(dev, xt, wt, { kernel }), warmup, reps);
        const r = record({
          case: 'matmul',
          shape: [M, N, K],
          dtype,
          unit: 'GFLOP/s',
          ours: (2 * M * N * K) / ms / 1e6,
          baseline: blas.gflops,
          note: `${kernel}, ${pickedBy(picks, kernel)}; OpenBLAS sgemm, ${blas.threads} threads${process.env.OPENBLAS_CORETYPE ? `, OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE}` : ''}`,
        });
        out.push(r);
        opts.onRecord?.(r);
      } finally {
        dev.release(xt, wt);
      }
    }
  }
  return out;
}

// ---- attention ---------------------------------------------------------------------------

export interface AttentionShape {
  Sq: number;
  Skv: number;
  H: number;
  Hkv: number;
  D: number;
  causal: boolean;
}

/**
 * CLIP-style bidirectional attention over a 600-token sequence (16 heads of 64), a LLaMA-7B
 * causal prefill of 600 tokens (32 heads of 128) and one LLaMA-7B decoding step against a
 * 600-entry KV cache.
 */
export function attentionShapes(quick = false): AttentionShape[] {
  if (quick) return [{ Sq: 24, Skv: 24, H: 2, Hkv: 2, D: 16, causal: false }, { Sq: 1, Skv: 40, H: 2, Hkv: 1, D: 16, causal: true }];
  return [
    { Sq: 600, Skv: 600, H: 16, Hkv: 16, D: 64, causal: false },
    { Sq: 600, Skv: 600, H: 32, Hkv: 32, D: 128, causal: true },
    { Sq: 1, Skv: 600, H: 32, Hkv: 32, D: 128, causal: true },
  ];
}

const ATTENTION_TOL = 1e-4;

async function torchAttention(args: string[]): Promise<void> {
  try {
    await run(python(), [join(HERE, 'torch_attention.py'), ...args], { maxBuffer: 1 << 20 });
  } catch (e) {
    const err = (e as { stderr?: string }).stderr ?? String(e);
    throw new Error(`PyTorch baseline failed (${python()} bench/torch_attention.py ${args.slice(0, 7).join(' ')}):\n${err.trim()}\n` +
      `it needs a python with torch and numpy (bash .ci/hf-venv.sh sets one up)`);
  }
}

async function torchAttentionRun(s: AttentionShape, q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array> {
  const dir = await mkdtemp(join(tmpdir(), 'phaselens-attn-'));
  try {
    const files = ['q', 'k', 'v', 'out'].map((n) => join(dir, `${n}.f32`));
    for (const [i, a] of [q, k, v].entries()) await writeFile(files[i], new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    await torchAttention(['run', ...[s.Sq, s.Skv, s.H, s.Hkv, s.D, s.causal ? 1 : 0].map(String), ...files]);
    const bytes = await readFile(files[3]);
    return new Float32Array(bytes.buffer, bytes.byteOffset, s.Sq * s.H * s.D).slice();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Median ms of the torch baseline with the better of 1 thread and every core. */
async function torchAttentionMs(s: AttentionShape, warmup: number, reps: number): Promise<{ ms: number; threads: number }> {
  const threads = [...new Set([1, cpus().length])];
  let best = { ms: Infinity, threads: 1 };
  for (const t of threads) {
    const { stdout } = await run(python(), [join(HERE, 'torch_attention.py'), 'bench', ...[s.Sq, s.Skv, s.H, s.Hkv, s.D, s.causal ? 1 : 0, warmup, reps, t].map(String)], { maxBuffer: 1 << 20 });
    const ms = (JSON.parse(stdout) as { median_ms: number }).median_ms;
    if (ms < best.ms) best = { ms, threads: t };
  }
  return best;
}

export const ATTENTION_VARIANTS: readonly AttentionVariant[] = ['rows', 'split', 'flash', 'decode'];

export async function benchAttention(gpu: Gpu, opts: KernelBenchOptions = {}): Promise<BenchRecord[]> {
  const reps = opts.reps ?? 5;
  const warmup = opts.warmup ?? 2;
  const out: BenchRecord[] = [];
  for (const s of attentionShapes(opts.quick)) {
    const { Sq, Skv, H, Hkv, D, causal } = s;
    const q = randn(Sq * H * D, 1 + Sq);
    const k = randn(Skv * Hkv * D, 2 + Skv);
    const v = randn(Skv * Hkv * D, 3 + Skv);
    const want = await torchAttentionRun(s, q, k, v);
    const base = await torchAttentionMs(s, warmup, reps);
    const flops = 4 * H * D * visiblePairs(Sq, Skv, causal);
    const picks = { cpu: pickVariant(gpu, Sq, D), gpu: opts.gpuClass && pickVariant(opts.gpuClass, Sq, D) };
    const variants = opts.attentionVariant ? [opts.attentionVariant] : ATTENTION_VARIANTS.filter((x) => x !== 'decode' || Sq <= DECODE_MAX_ROWS);
    for (const variant of variants) {
      const dev = variant === 'rows' || variant === 'split' || !opts.gpuClass ? gpu : opts.gpuClass;
      const qt = dev.upload(q, [Sq, H, D], 'q');
      const kt = dev.upload(k, [Skv, Hkv, D], 'k');
      const vt = dev.upload(v, [Skv, Hkv, D], 'v');
      try {
        const o = attention(dev, qt, kt, vt, { causal, variant });
        const got = await dev.readF32(o);
        dev.release(o);
        check(`attention ${variant} [${Sq}, ${Skv}, ${H}, ${D}]`, relErr(got, want), ATTENTION_TOL);
        const ms = await timeGpu(dev, () => attention(dev, qt, kt, vt, { causal, variant }), warmup, reps);
        const r = record({
          case: 'attention',
          shape: [Sq, Skv, H, D],
          dtype: 'f32',
          unit: 'GFLOP/s',
          ours: flops / ms / 1e6,
          baseline: flops / base.ms / 1e6,
          note: `${variant}, ${pickedBy(picks, variant)}; ${causal ? 'causal' : 'bidirectional'}${Hkv !== H ? `, ${Hkv} kv heads` : ''}; torch ${base.threads} thread${base.threads > 1 ? 's' : ''}`,
        });
        out.push(r);
        opts.onRecord?.(r);
      } finally {
        dev.release(qt, kt, vt);
      }
    }
  }
  return out;
}
