/**
 * Completes an organism checkpoint: the float32 tensors train.py wrote become the
 * folder's f16 `model.safetensors`, through the same writer as make-tiny
 * (weights-tools/write-checkpoint.ts). Every tensor the config calls for (HF names and
 * shapes from src/io/expected-tensors.ts) must be in the trained file and nothing else
 * may be, so a trainer that drifts from the HF layout fails here, not in phaselens.
 *
 *   node src/cli/run-ts.mjs weights-tools/train/export.ts --model DIR --weights TRAINED.safetensors
 *
 * DIR is the skeleton organisms.ts wrote (config.json, tokenizer and processor files).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { isMain, runStandalone } from '../../src/cli/standalone.ts';
import { UserError } from '../../src/errors.ts';
import { f32ToF16Bits } from '../../src/gpu/half.ts';
import { expectedTensors } from '../../src/models/registry.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { tensorBytes, type TensorSpec } from '../../src/io/safetensors-write.ts';
import { openFileSource } from '../../src/io/source-node.ts';
import { writeWeights } from '../write-checkpoint.ts';
import { checkedConfig } from './organisms.ts';

export async function exportOrganism(dir: string, weights: string): Promise<{ tensors: number; bytes: number }> {
  const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const { config } = checkedConfig(json);
  const trained = await SafetensorsFile.open(await openFileSource(weights));
  try {
    const specs: TensorSpec[] = expectedTensors(config)
      .filter((t) => !t.optional)
      .map((t) => ({ name: t.name, shape: t.shape, dtype: 'F16' }));
    const wanted = new Set(specs.map((t) => t.name));
    const extra = [...trained.tensors.keys()].filter((n) => !wanted.has(n));
    if (extra.length) throw new UserError(`${weights}: tensors the config does not call for: ${extra.slice(0, 5).join(', ')}`);
    for (const t of specs) {
      const got = trained.tensors.get(t.name);
      if (!got) throw new UserError(`${weights}: no tensor ${t.name}`);
      if (got.dtype !== 'F32' || got.shape.join() !== t.shape.join()) throw new UserError(`${weights}: ${t.name} is ${got.dtype} [${got.shape}], want F32 [${t.shape}]`);
    }
    const half = async (t: TensorSpec) => {
      const raw = await trained.readTensor(t.name);
      const f = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      const out = new Uint16Array(f.length);
      for (let i = 0; i < f.length; i++) {
        if (!Number.isFinite(f[i]) || Math.abs(f[i]) > 65504) throw new UserError(`${weights}: ${t.name}[${i}] = ${f[i]} does not fit f16`);
        out[i] = f32ToF16Bits(f[i]);
      }
      return new Uint8Array(out.buffer);
    };
    await writeWeights(dir, specs, half);
    return { tensors: specs.length, bytes: specs.reduce((n, t) => n + tensorBytes(t), 0) };
  } finally {
    await trained.close();
  }
}

export function configureExport(cmd: Command): Command {
  return cmd
    .description("write an organism's f16 model.safetensors from train.py's float32 tensors")
    .requiredOption('--model <dir>', 'organism folder (skeleton from organisms.ts)')
    .requiredOption('--weights <file>', "train.py's output")
    .action(async (o: { model: string; weights: string }) => {
      const r = await exportOrganism(o.model, o.weights);
      console.log(`wrote ${o.model}/model.safetensors: ${r.tensors} tensors, ${(r.bytes / 1e6).toFixed(2)} MB`);
    });
}

if (isMain(import.meta.url)) await runStandalone(configureExport(new Command('export')));
