/** Opening checkpoint folders on disk in tests, through the same registry the CLI uses. */
import type { Gpu } from '../../src/gpu/context.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { nodeDirectory } from '../../src/io/source-node.ts';
import { openModel } from '../../src/models/registry.ts';
import type { LoadOptions, PromptSpec, Vlm, VlmFiles, VlmInput } from '../../src/models/vlm.ts';

export function openDir(dir: string): Promise<VlmFiles> {
  return openModel(nodeDirectory(dir));
}

export async function loadDir(gpu: Gpu, dir: string, opts: LoadOptions = {}): Promise<Vlm> {
  return (await openDir(dir)).load(gpu, opts);
}

/** `m.prepare` with an image file. */
export function prepareFile(m: Pick<Vlm, 'prepare'>, p: PromptSpec, image: string): VlmInput {
  return m.prepare(p, readImageFile(image));
}
