/** `phaselens dump`: one forward pass, every named activation into one safetensors file. */
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { writeSafetensors } from '../../io/safetensors-write.ts';
import { loadLlava } from '../../models/load.ts';
import { loadPixels, promptIds } from '../../models/run.ts';
import { dumpActivations } from '../../probes/dump.ts';
import { VERSION } from '../../version.ts';
import { addProfileOption, finishProfile, loadProgress, openGpu, parseDtype, type ProfileOption } from '../gpu-session.ts';

interface Options extends ProfileOption {
  model: string;
  image?: string;
  prompt?: string;
  inputIds?: string;
  chat: boolean;
  dtype?: string;
  out: string;
  padToSquare: boolean;
}

export function register(program: Command): void {
  addProfileOption(
    program
      .command('dump')
      .description('run one forward pass and write input_ids, pixel_values, vision_hidden_states.*, image_features, hidden_states.*, residual_final and logits to a safetensors file')
      .requiredOption('--model <dir>', 'Hugging Face LLaVA checkpoint folder')
      .option('--image <file>', 'PNG or JPEG')
      .option('--prompt <text>', 'prompt; use <image> for the image, or --chat')
      .option('--input-ids <ids>', 'comma-separated token ids instead of --prompt')
      .option('--chat', "wrap the prompt in the checkpoint's chat template", false)
      .option('--dtype <dtype>', 'weights on the GPU: f32 or f16 (default: as stored in the checkpoint)')
      .option('--pad-to-square', "LLaVA-1.5's original preprocessing (pad to a square with the mean colour)", false)
      .requiredOption('--out <file>', 'output .safetensors'),
  ).action(async (o: Options) => {
    if (!o.out.endsWith('.safetensors')) throw new UserError(`--out must name a .safetensors file, got ${o.out}`);
    const gpu = await openGpu(o);
    const m = await loadLlava(gpu, o.model, { dtype: parseDtype(o.dtype), onProgress: loadProgress('loading weights') });
    const pixels = o.image ? loadPixels(m, o.image, { padToSquare: o.padToSquare }) : undefined;
    const x = m.model.expand(promptIds(m, o, !!pixels), !!pixels);
    const tensors = await dumpActivations(gpu, m, x, pixels);
    const specs = [...tensors.entries()].map(([name, t]) => ({ name, dtype: t.data instanceof Int32Array ? ('I32' as const) : ('F32' as const), shape: t.shape }));
    await writeSafetensors(o.out, specs, (s) => {
      const d = tensors.get(s.name)!.data;
      return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    }, {
      format: 'phaselens-dump',
      phaselens_version: VERSION,
      model: o.model,
      weight_dtypes: m.weightDtypes.join(','),
      image: o.image ?? '',
      chat: String(o.chat),
      pad_to_square: String(o.padToSquare),
    });
    console.log(`wrote ${tensors.size} tensors (seq ${x.ids.length}, image tokens [${x.image[0]}, ${x.image[1]})) to ${o.out}`);
    await finishProfile(gpu, o);
  });
}
