/**
 * The HF transformers side of the bench: one long-lived `bench/hf_baseline.py` per group
 * (started once, loads each checkpoint once, then times requests on a warm model), in the
 * venv of `.ci/hf-venv.sh` (torch 2.x + transformers 5.x; set PHASELENS_HF_PYTHON to use
 * another python), and the helpers that make both sides do the same work.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { VlmInput } from '../src/models/vlm.ts';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'bench/hf_baseline.py');

/** The python with torch 2.x + transformers 5.x (sets the venv up the first time). */
export function hfPython(): string {
  if (process.env.PHASELENS_HF_PYTHON) return process.env.PHASELENS_HF_PYTHON;
  return execFileSync('bash', [join(ROOT, '.ci/hf-venv.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export interface HfVersions {
  python: string;
  torch: string;
  transformers: string;
  threads: number;
  /** Seconds to import torch + transformers (the process's start-up, outside every figure). */
  import_s: number;
}

/** A timed request's answer: the median and every sample, in seconds. */
export interface HfTimed {
  s: number;
  all: number[];
}

export class HfBaseline {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  private constructor(python: string) {
    this.proc = spawn(python, ['-u', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-4000); // the tail, for errors
    });
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  static async start(): Promise<{ hf: HfBaseline; versions: HfVersions }> {
    const hf = new HfBaseline(hfPython());
    return { hf, versions: await hf.request<HfVersions>({ op: 'versions' }) };
  }

  /** Sends one request and waits for its answer; a failed request throws with the error. */
  async request<T>(r: Record<string, unknown>): Promise<T> {
    this.proc.stdin.write(JSON.stringify(r) + '\n');
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`bench/hf_baseline.py exited (${this.proc.exitCode}) during ${r.op}:\n${this.stderr.trim()}`);
    const a = JSON.parse(value) as { ok: boolean; error?: string } & T;
    if (!a.ok) throw new Error(`HF baseline, ${r.op}: ${a.error}`);
    return a;
  }

  /** Loads a checkpoint (float32, on the CPU); returns from_pretrained's seconds. */
  async load(dir: string): Promise<number> {
    return (await this.request<{ load_s: number }>({ op: 'load', model: dir })).load_s;
  }

  /** The inputs of the requests that follow: phaselens's own prepared ids and pixels. */
  async inputs(dir: string, x: VlmInput): Promise<void> {
    const prefix = join(dir, 'hf-inputs');
    writeInputs(prefix, x);
    await this.request({ op: 'inputs', prefix });
  }

  close(): void {
    this.proc.stdin.end();
  }
}

/**
 * PREFIX.json ({ids, qformer_ids, pixel_shape, image_sizes, image, text, bos, query}) and
 * PREFIX.f32 (pixels), as bench/gpu/hf_bench.py reads them. image_sizes: the original
 * [height, width] of a tiled (LLaVA-NeXT) image, which HF's forward needs to unpad.
 */
export function writeInputs(prefix: string, x: VlmInput): void {
  const px = x.pixels;
  writeFileSync(
    `${prefix}.json`,
    JSON.stringify({ ids: x.ids, qformer_ids: x.qformerIds ?? null, pixel_shape: px ? [...px.shape] : null, image_sizes: px?.anyres?.imageSize ?? null, image: x.groups.image, text: x.groups.text, bos: x.groups.bos, query: x.groups.last }) + '\n',
  );
  if (px) writeFileSync(`${prefix}.f32`, new Uint8Array(px.data.buffer, px.data.byteOffset, px.data.byteLength));
}

/** The HF side's settings, for the printed table. */
export function hfSettings(v: HfVersions): string {
  return `HF transformers ${v.transformers}, torch ${v.torch} (Python ${v.python}) on the CPU, ${v.threads} threads; its start-up (import) ${v.import_s.toFixed(1)} s, outside every figure`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** One warm-up call, then the median seconds of `reps` calls. */
export async function timeWarm(reps: number, f: () => Promise<unknown>): Promise<number> {
  await f();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    t.push((performance.now() - t0) / 1000);
  }
  return median(t);
}
