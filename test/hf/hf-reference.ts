/**
 * HF transformers as the reference: the venv of .ci/hf-venv.sh (torch 2.x + transformers
 * 5.x, set up once and cached; PHASELENS_HF_PYTHON picks another python, as for the bench)
 * and test/hf/hf_parity.py, run once per batch of cases.
 *
 *   const dir = await hfReference(CASES);     // one Python process for every case not cached
 *   join(dir, name, 'model')                  // the checkpoint transformers wrote
 *   join(dir, name, 'hf.safetensors')         // HF's tensors (see hf_parity.py's docstring)
 *   join(dir, name, 'hf.json')                // HF-side metrics, token groups, versions
 *
 * The outputs are cached under test/.cache/hf-parity/[<batch>/]<key>, the key a hash of the
 * Python sources (hf_parity.py and the bench's hf_metrics.py / hf_bench.py it imports), the
 * case list and the versions installed in the venv, so a change to any of them regenerates.
 * Each test file names its own batch, so one file's run does not evict another's; files
 * that share a batch (running in parallel workers) wait on one generation through a lock.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hfPython } from '../../bench/hf.ts';

const ROOT = join(import.meta.dirname, '../..');
export const HF_SCRIPT = join(import.meta.dirname, 'hf_parity.py');
const LOCK_STALE_MS = 30 * 60_000;
const SOURCES = [HF_SCRIPT, join(import.meta.dirname, 'hf_chameleon.py'), join(ROOT, 'bench/gpu/hf_metrics.py'), join(ROOT, 'bench/gpu/hf_bench.py')];

export interface HfCase {
  name: string;
  family: 'llava' | 'llava_next' | 'instructblip' | 'chameleon';
  /** Chameleon (hf_chameleon.py): swin_norm, the VQ encoder's levels, attention at level 0. */
  swin?: boolean;
  levels?: number;
  attn?: boolean;
  /** Chameleon: the VQ encoder's channel_multiplier (default [1, 2, 2, …]). */
  mult?: number[];
  /** LLaVA-NeXT: the language model (hf_parity.py's docstring). */
  lm?: 'vicuna' | 'llama3' | 'mistral';
  /** LLaVA-NeXT: image_grid_pinpoints, [height, width] multiples of image_size. */
  pinpoints?: [number, number][];
  /** Cut [left, top, right, bottom] from the image first (aspect ratios the fixtures lack). */
  crop?: [number, number, number, number];
  /** hub: the published folders' layout; transformers5: as save_pretrained writes it. */
  layout: 'hub' | 'transformers5';
  dtype: 'float32' | 'float16' | 'bfloat16';
  gqa: boolean;
  /** save_pretrained's max_shard_size (e.g. "5MB"): shards + model.safetensors.index.json. */
  max_shard_size?: string;
  /** The vision tower's input size (CLIP: the crop; BLIP: the exact resize). */
  image_size: number;
  /** CLIP's shortest edge before the centre crop (BLIP ignores it). */
  resize: number;
  seed: number;
  /** Image file, relative to the repository root. */
  image: string;
  prompt: string;
  new_tokens: number;
  topk: number;
  /** The metrics once more: BOS dropped from the text set, another query row, another k. */
  variant?: { drop_bos: boolean; query: number; topk: number };
  /** How HF runs it: float32 (default) or float16 (model.half(); hf_parity.py's docstring). */
  compute?: 'float32' | 'float16';
}

/** Names of the distributions installed in the venv (torch-2.13.0+cpu.dist-info, …). */
function venvVersions(py: string): string[] {
  const lib = join(dirname(dirname(py)), 'lib');
  return readdirSync(lib)
    .flatMap((v) => (existsSync(join(lib, v, 'site-packages')) ? readdirSync(join(lib, v, 'site-packages')) : []))
    .filter((n) => n.endsWith('.dist-info'))
    .sort();
}

function run(py: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(py, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${py} ${args.join(' ')} exited with ${code}:\n${log.slice(-4000)}`))));
  });
}

/** Runs hf_parity.py for the cases (unless cached) and returns the folder holding one sub-folder per case. */
export async function hfReference(cases: HfCase[], batch = ''): Promise<string> {
  const py = hfPython();
  const h = createHash('sha256');
  for (const f of SOURCES) h.update(readFileSync(f));
  h.update(JSON.stringify(cases));
  h.update(venvVersions(py).join('\n'));
  const cache = join(ROOT, 'test/.cache/hf-parity', batch);
  const key = h.digest('hex').slice(0, 16);
  const dir = join(cache, key);
  const done = join(dir, 'done');
  const lock = `${dir}.lock`;
  mkdirSync(cache, { recursive: true });
  for (;;) {
    if (existsSync(done)) return dir;
    try {
      mkdirSync(lock);
      break;
    } catch {
      // another worker generates this batch; a lock older than the generation can take is stale
      const held = statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    // one batch is cached: earlier keys are stale (sources, cases or versions changed)
    for (const old of readdirSync(cache).filter((n) => /^[0-9a-f]{16}$/.test(n))) rmSync(join(cache, old), { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const list = join(dir, 'cases.json');
    writeFileSync(list, JSON.stringify(cases, null, 1));
    await run(py, [HF_SCRIPT, '--cases', list, '--out', dir]);
    writeFileSync(done, '');
    return dir;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
