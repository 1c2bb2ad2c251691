/**
 * The error of `--precision f16` against the f32 default on one checkpoint: the model is
 * loaded at each precision (f16 weights both times, so only the arithmetic differs), the
 * dump's tensors are compared (max |f16 − f32| / max |f32| per tensor, the parity tests'
 * measure) and greedy decoding's tokens are compared step by step.
 *
 *   node src/cli/run-ts.mjs bench/precision.ts --model DIR [--image FILE] [--prompt TEXT] [--tokens N]
 *
 * README ("Precision") has the figures for make-tiny and make-random --shape llava-mid /
 * instructblip-mid checkpoints.
 */
import { Command } from 'commander';
import { isMain, runStandalone } from '../src/cli/standalone.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { readImageFile } from '../src/io/load-node.ts';
import { nodeDirectory } from '../src/io/source-node.ts';
import { generate } from '../src/models/generate.ts';
import { openModel } from '../src/models/registry.ts';
import type { Precision } from '../src/ops/precision.ts';
import { dumpActivations, type HostTensor } from '../src/probes/dump.ts';

const DEFAULT_IMAGE = 'test/fixtures/images/000000039769.png';

function relErr(got: HostTensor['data'], want: HostTensor['data']): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    s = Math.max(s, Math.abs(want[i]));
  }
  return s > 0 ? d / s : d;
}

export async function precisionError(o: { model: string; image: string; prompt: string; tokens: number }): Promise<void> {
  const gpu = await createNodeGpu();
  const runs = new Map<Precision, { dump: Map<string, HostTensor>; tokens: number[] }>();
  for (const precision of ['f32', 'f16'] as const) {
    const files = await openModel(nodeDirectory(o.model));
    const x = files.prepare({ prompt: files.promptFor(o.prompt, files.capabilities.chatTemplate), chat: files.capabilities.chatTemplate }, readImageFile(o.image));
    const m = await files.load(gpu, { dtype: 'f16', precision });
    const t0 = performance.now();
    const dump = await dumpActivations(gpu, m, x);
    const g = await generate(gpu, m, x, o.tokens, undefined, { stopAtEos: false });
    console.error(`${precision}: dump + ${o.tokens} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s (seq ${x.ids.length})`);
    runs.set(precision, { dump, tokens: g.tokens });
  }
  const [f32, f16] = [runs.get('f32')!, runs.get('f16')!];
  let worstHidden = 0;
  console.log(`${o.model}: max |f16 − f32| / max |f32| per tensor`);
  for (const [name, t] of f32.dump) {
    if (name.endsWith('input_ids') || name === 'pixel_values') continue;
    const e = relErr(f16.dump.get(name)!.data, t.data);
    if (name.startsWith('hidden_states.')) worstHidden = Math.max(worstHidden, e);
    console.log(`  ${name.padEnd(28)} ${e.toExponential(2)}`);
  }
  const same = f16.tokens.findIndex((t, i) => t !== f32.tokens[i]);
  console.log(`LM hidden states: worst ${worstHidden.toExponential(2)}; greedy tokens: ${same < 0 ? `all ${o.tokens} equal` : `equal for the first ${same} of ${o.tokens}`}`);
}

if (isMain(import.meta.url)) {
  await runStandalone(
    new Command('precision')
      .requiredOption('--model <dir>', 'checkpoint folder')
      .option('--image <file>', 'PNG or JPEG', DEFAULT_IMAGE)
      .option('--prompt <text>', 'question', 'What is shown in this image?')
      .option('--tokens <n>', 'greedy tokens compared', '16')
      .action(async (a: { model: string; image: string; prompt: string; tokens: string }) => precisionError({ ...a, tokens: Number(a.tokens) })),
  );
}
