/**
 * Host-side helpers shared by the reference self-checks (llava_ref.test.ts,
 * metrics_ref.test.ts): a tiny checkpoint read whole as f32, make-tiny as a subprocess,
 * and plain-loop f64 math on row-major flat matrices.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bf16BitsToF32, f16BitsToF32 } from '../../src/gpu/half.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { openFileSource } from '../../src/io/source-node.ts';

const ROOT = join(import.meta.dirname, '..', '..');

export type Weights = Map<string, { data: Float32Array; shape: number[] }>;
export type Mat = Float64Array;

/** Every tensor of a (single-file or sharded) checkpoint as f32; for tiny checkpoints only. */
export async function loadCheckpoint(dir: string): Promise<Weights> {
  let files = ['model.safetensors'];
  try {
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    files = [...new Set(Object.values(index.weight_map))];
  } catch {
    // single file
  }
  const out: Weights = new Map();
  for (const f of files) {
    const file = await SafetensorsFile.open(await openFileSource(join(dir, f)));
    try {
      for (const [name, info] of file.tensors) {
        const bytes = await file.readTensor(name);
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const n = info.shape.reduce((a, b) => a * b, 1);
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          if (info.dtype === 'F32') data[i] = dv.getFloat32(4 * i, true);
          else if (info.dtype === 'F16') data[i] = f16BitsToF32(dv.getUint16(2 * i, true));
          else if (info.dtype === 'BF16') data[i] = bf16BitsToF32(dv.getUint16(2 * i, true));
          else throw new Error(`${name}: dtype ${info.dtype}`);
        }
        out.set(name, { data, shape: info.shape });
      }
    } finally {
      await file.close();
    }
  }
  return out;
}

/** `make-tiny --arch llava --seed 1 --out dir ...args`, through the CLI script. */
export function makeTiny(dir: string, args: string[]): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'src/cli/run-ts.mjs'), join(ROOT, 'weights-tools/make-tiny.ts'), '--arch', 'llava', '--seed', '1', '--out', dir, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make-tiny failed: ${r.stderr}`);
}

/** y[n, m] = x[n, k] · W[m, k]ᵀ + b */
export function linear(x: ArrayLike<number>, n: number, k: number, w: Float32Array, m: number, b?: Float32Array): Mat {
  const y = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < m; o++) {
      let s = b ? b[o] : 0;
      for (let j = 0; j < k; j++) s += x[i * k + j] * w[o * k + j];
      y[i * m + o] = s;
    }
  }
  return y;
}

export function rmsNorm(x: ArrayLike<number>, n: number, d: number, g: Float32Array, eps: number): Mat {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[i * d + j] ** 2;
    const r = 1 / Math.sqrt(ss / d + eps);
    for (let j = 0; j < d; j++) y[i * d + j] = x[i * d + j] * r * g[j];
  }
  return y;
}

/** RoPE, HF rotate-half layout, positions 0..n-1, in place on [n, heads·hd]. */
export function rope(x: Mat, n: number, heads: number, hd: number, theta: number): void {
  const half = hd / 2;
  for (let p = 0; p < n; p++) {
    for (let h = 0; h < heads; h++) {
      const o = p * heads * hd + h * hd;
      for (let i = 0; i < half; i++) {
        const a = p / theta ** ((2 * i) / hd);
        const c = Math.cos(a);
        const s = Math.sin(a);
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}
