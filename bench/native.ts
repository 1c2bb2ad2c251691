/**
 * The OpenBLAS baseline: bench/native/sgemm.c, compiled on first use with
 * `cc -O2 … -lopenblas` into node_modules/.cache/phaselens/ (rebuilt when the source
 * changes) and run as a subprocess that prints JSON. No node-gyp, no addon.
 *
 * Needs a C compiler and Debian's libopenblas-dev (`bash .ci/system-deps.sh bench`).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCE = join(HERE, 'native', 'sgemm.c');
const CACHE = join(HERE, '..', 'node_modules', '.cache', 'phaselens');

let built: Promise<string> | undefined;

/** Path of the compiled helper (compiles it the first time). */
export function sgemmBinary(): Promise<string> {
  built ??= (async () => {
    const src = readFileSync(SOURCE);
    const exe = join(CACHE, `sgemm-${createHash('sha256').update(src).digest('hex').slice(0, 12)}`);
    if (existsSync(exe)) return exe;
    mkdirSync(CACHE, { recursive: true });
    const cc = process.env.CC ?? 'cc';
    try {
      await run(cc, ['-O2', SOURCE, '-o', exe, '-lopenblas']);
    } catch (e) {
      const err = (e as { stderr?: string }).stderr ?? String(e);
      throw new Error(`could not build the OpenBLAS baseline (${cc} -O2 bench/native/sgemm.c -lopenblas):\n${err.trim()}\n` +
        `install a C compiler and libopenblas-dev: bash .ci/system-deps.sh bench`);
    }
    return exe;
  })();
  return built;
}

export interface SgemmTiming {
  M: number;
  N: number;
  K: number;
  threads: number;
  ms: number[];
  median_ms: number;
  gflops: number;
}

/** Times cblas_sgemm on random data: `warmup` untimed calls, then the median of `reps`. */
export async function sgemmBench(M: number, N: number, K: number, warmup = 2, reps = 5): Promise<SgemmTiming> {
  const { stdout } = await run(await sgemmBinary(), ['bench', String(M), String(N), String(K), String(warmup), String(reps)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as SgemmTiming;
}

/** y [M, N] = x [M, K] · w [N, K]ᵀ with cblas_sgemm (the reference results are validated against). */
export async function sgemmRun(x: Float32Array, w: Float32Array, M: number, N: number, K: number): Promise<Float32Array> {
  if (x.length !== M * K || w.length !== N * K) throw new Error(`sgemmRun: sizes do not match [${M}, ${K}] · [${N}, ${K}]ᵀ`);
  const dir = await mkdtemp(join(tmpdir(), 'phaselens-sgemm-'));
  try {
    const [xf, wf, yf] = ['x', 'w', 'y'].map((n) => join(dir, `${n}.f32`));
    await writeFile(xf, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    await writeFile(wf, new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    await run(await sgemmBinary(), ['run', String(M), String(N), String(K), xf, wf, yf]);
    const bytes = await readFile(yf);
    return new Float32Array(bytes.buffer, bytes.byteOffset, M * N).slice();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
