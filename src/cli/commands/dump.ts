/** `phaselens dump`: one forward pass, every named activation into one safetensors file. */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { writeSafetensors } from '../../io/safetensors-write.ts';
import { dumpActivations } from '../../probes/dump.ts';
import { VERSION } from '../../version.ts';
import { finishProfile } from '../gpu-session.ts';
import { checkOutputFile } from '../output-paths.ts';
import { addModelRunOptions, prepareModelRun, type ModelRunOptions } from '../model-run.ts';

interface Options extends ModelRunOptions {
  out: string;
}

export function register(program: Command): void {
  addModelRunOptions(
    program
      .command('dump')
      .description('run one forward pass and write every activation of the dump contract (README) to a safetensors file'),
  )
    .requiredOption('--out <file>', 'output .safetensors')
    .action(async (o: Options) => {
      if (!o.out.endsWith('.safetensors')) throw new UserError(`--out must name a .safetensors file, got ${o.out}`);
      checkOutputFile('--out', o.out);
      const { gpu, m, x } = await prepareModelRun(o);
      const tensors = await dumpActivations(gpu, m, x);
      const specs = [...tensors.entries()].map(([name, t]) => ({ name, dtype: t.data instanceof Int32Array ? ('I32' as const) : ('F32' as const), shape: t.shape }));
      await writeSafetensors(o.out, specs, (s) => {
        const d = tensors.get(s.name)!.data;
        return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      }, {
        format: 'phaselens-dump',
        phaselens_version: VERSION,
        model: o.model,
        model_family: m.family,
        weight_dtypes: m.weightDtypes.join(','),
        precision: m.precision,
        image: o.image ?? '',
        chat: String(o.chat),
        prompt: o.prompt ?? '',
        input_ids: o.inputIds ?? '',
        qformer_input_ids: o.qformerInputIds ?? '',
        pad_to_square: String(o.padToSquare),
      });
      console.log(`wrote ${tensors.size} tensors (seq ${x.ids.length}, visual tokens [${x.groups.image[0]}, ${x.groups.image[1]})) to ${o.out}`);
      await finishProfile(gpu, o);
    });
}
