/**
 * Host-side helpers of the intervention reference's self-checks (interventions_ref.test.ts)
 * and the intervention parity test: a tiny checkpoint read whole as f32, make-tiny as a
 * subprocess, the q/k sharpening, and plain-loop f64 math on row-major flat matrices.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bf16BitsToF32, f16BitsToF32 } from '../../src/gpu/half.ts';
import { writeSafetensors } from '../../src/io/safetensors-write.ts';
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

/**
 * The factor on the LM's q_proj / k_proj that makes a make-tiny checkpoint's attention peaky:
 * its normal(0, 0.02) weights give scores ≈ 0 and near-uniform softmax rows, on which an
 * intervention on attention barely shows (interventions_ref.test.ts, interventions/parity.test.ts).
 */
export const QK_SHARPEN = 6;

/**
 * A copy of a hub-layout tiny checkpoint (every other file too; weights as one f32 file) with
 * the LM's q_proj / k_proj × `factor` — or, for Chameleon, whose per-head LayerNorm undoes
 * any scale of q_proj / k_proj, its q_norm weight and bias × `factor`.
 */
export async function writeSharpened(src: string, dst: string, factor = QK_SHARPEN): Promise<void> {
  const w = await loadCheckpoint(src);
  const qk = /^(language_model\.model\.layers\.\d+\.self_attn\.[qk]_proj\.weight|model\.layers\.\d+\.self_attn\.q_norm\.(weight|bias))$/;
  const names = [...w.keys()].filter((n) => qk.test(n));
  if (names.length === 0) throw new Error(`${src}: no language_model.model.layers.*.self_attn.[qk]_proj.weight (or Chameleon's model.layers.*.self_attn.q_norm) to sharpen`);
  for (const name of names) w.set(name, { data: w.get(name)!.data.map((v) => v * factor), shape: w.get(name)!.shape });
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src)) if (!/^model.*\.safetensors(\.index\.json)?$/.test(f)) cpSync(join(src, f), join(dst, f), { recursive: true });
  const specs = [...w].map(([name, t]) => ({ name, shape: t.shape, dtype: 'F32' as const }));
  await writeSafetensors(join(dst, 'model.safetensors'), specs, (t) => {
    const a = w.get(t.name)!.data;
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  });
}

/** One checkpoint tensor's data; throws if the checkpoint lacks it. */
export function weight(w: Weights, name: string): Float32Array {
  const t = w.get(name);
  if (!t) throw new Error(`checkpoint has no ${name}`);
  return t.data;
}

/** `make-tiny --arch ARCH --seed 1 --out dir ...args`, through the CLI script. */
export function makeTiny(dir: string, args: string[], arch: 'llava' | 'instructblip' = 'llava'): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'src/cli/run-ts.mjs'), join(ROOT, 'weights-tools/make-tiny.ts'), '--arch', arch, '--seed', '1', '--out', dir, ...args], { encoding: 'utf8' });
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

export const silu = (x: number) => x / (1 + Math.exp(-x));

/**
 * Causal multi-head attention core on projected q, k, v [n, heads·hd]: softmax(q·kᵀ/√hd) · v,
 * head h reading kv head ⌊h / (nh/nkv)⌋. Returns [n, nh·hd].
 */
export function attention(q: Mat, k: Mat, v: Mat, n: number, nh: number, nkv: number, hd: number): Mat {
  const out = new Float64Array(n * nh * hd);
  const group = nh / nkv;
  for (let h = 0; h < nh; h++) {
    const kh = Math.floor(h / group);
    for (let i = 0; i < n; i++) {
      const s = new Float64Array(i + 1);
      let mx = -Infinity;
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let e = 0; e < hd; e++) d += q[i * nh * hd + h * hd + e] * k[j * nkv * hd + kh * hd + e];
        s[j] = d / Math.sqrt(hd);
        mx = Math.max(mx, s[j]);
      }
      let z = 0;
      for (let j = 0; j <= i; j++) z += s[j] = Math.exp(s[j] - mx);
      for (let j = 0; j <= i; j++) {
        const p = s[j] / z;
        for (let e = 0; e < hd; e++) out[i * nh * hd + h * hd + e] += p * v[j * nkv * hd + kh * hd + e];
      }
    }
  }
  return out;
}

export function add(a: ArrayLike<number>, b: ArrayLike<number>): Mat {
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i];
  return y;
}

/** The LLaMA text config fields the decoder-layer loop reads (HF names). */
export interface LlamaDims {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  rms_norm_eps: number;
  rope_theta: number;
}
