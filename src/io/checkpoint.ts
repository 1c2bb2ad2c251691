/**
 * A Hugging Face checkpoint folder as one tensor table, whether the weights are in a
 * single `model.safetensors` or sharded with `model.safetensors.index.json` (whose
 * `weight_map` sends each tensor name to a shard file). Only headers are read on
 * open; tensor bytes are streamed on demand.
 *
 * Once validation has read the names in a layout (src/io/layouts.ts), `useNames`
 * lets tensors be asked for by their canonical name as well, so loaders need one set
 * of names whatever layout the folder is in.
 */
import { UserError } from '../errors.ts';
import type { DirectorySource } from './byte-source.ts';
import { SafetensorsFile, type ChunkSink, type TensorInfo } from './safetensors.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface CheckpointTensor extends TensorInfo {
  /** File name of the shard holding it, relative to the folder. */
  shard: string;
}

export class Checkpoint {
  /** Canonical name → stored name, for tensors stored under another name (see useNames). */
  private aliases = new Map<string, string>();

  private constructor(
    readonly dir: DirectorySource,
    /** Shard file names, sorted. */
    readonly shards: readonly string[],
    /** Every tensor under the name it is stored with. */
    readonly tensors: ReadonlyMap<string, CheckpointTensor>,
    private files: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  /** Answers to canonical names from now on: `names` maps each canonical name to its stored one. */
  useNames(names: ReadonlyMap<string, string>): void {
    for (const [canonical, stored] of names) if (canonical !== stored) this.aliases.set(canonical, stored);
  }

  /**
   * Opens `model.safetensors`, or else every shard named by the index. A shard that is
   * missing, a tensor the index places in a shard that lacks it, or a tensor stored in
   * two shards is an error naming the file.
   */
  static async open(dir: DirectorySource): Promise<Checkpoint> {
    const indexText = await dir.readText(INDEX_FILE);
    if (indexText === undefined) {
      const source = await dir.open(SINGLE_FILE);
      if (!source) throw new UserError(`${dir.name}: no ${SINGLE_FILE} or ${INDEX_FILE} (not a Hugging Face safetensors checkpoint folder)`);
      const file = await SafetensorsFile.open(source);
      const tensors = new Map([...file.tensors.values()].map((t) => [t.name, { ...t, shard: SINGLE_FILE }]));
      return new Checkpoint(dir, [SINGLE_FILE], tensors, new Map([[SINGLE_FILE, file]]));
    }

    const weightMap = parseIndex(`${dir.name}/${INDEX_FILE}`, indexText);
    const shards = [...new Set(weightMap.values())].sort();
    const files = new Map<string, SafetensorsFile>();
    try {
      for (const shard of shards) {
        const source = await dir.open(shard);
        if (!source) {
          const count = [...weightMap.values()].filter((s) => s === shard).length;
          throw new UserError(`${dir.name}: shard ${shard} is missing (${INDEX_FILE} places ${count} tensors in it)`);
        }
        files.set(shard, await SafetensorsFile.open(source));
      }
    } catch (e) {
      await Promise.all([...files.values()].map((f) => f.close()));
      throw e;
    }
    const tensors = new Map<string, CheckpointTensor>();
    for (const [name, shard] of weightMap) {
      const t = files.get(shard)!.tensors.get(name);
      if (!t) throw new UserError(`${dir.name}/${shard}: has no tensor "${name}", which ${INDEX_FILE} places there`);
      tensors.set(name, { ...t, shard });
    }
    for (const [shard, file] of files) {
      for (const name of file.tensors.keys()) {
        if (!weightMap.has(name)) throw new UserError(`${dir.name}/${shard}: tensor "${name}" is not listed in ${INDEX_FILE}`);
      }
    }
    return new Checkpoint(dir, shards, tensors, files);
  }

  get name(): string {
    return this.dir.name;
  }

  has(name: string): boolean {
    return this.tensors.has(name) || this.aliases.has(name);
  }

  /** A tensor's entry; `name` may be its stored or its canonical name. */
  info(name: string): CheckpointTensor {
    const t = this.tensors.get(name) ?? this.tensors.get(this.aliases.get(name) ?? '');
    if (!t) throw new UserError(`${this.dir.name}: checkpoint has no tensor "${name}"`);
    return t;
  }

  readTensor(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.files.get(t.shard)!.readTensor(t.name);
  }

  /** See SafetensorsFile.streamTensor. */
  streamTensor(name: string, chunkBytes: number, onChunk: ChunkSink, range?: { begin: number; end: number }): Promise<void> {
    const t = this.info(name);
    return this.files.get(t.shard)!.streamTensor(t.name, chunkBytes, onChunk, range);
  }

  /** Total bytes of tensor data. */
  get byteLength(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.close()));
  }
}

/** `weight_map` of an index file, validated: tensor name → shard file name. */
function parseIndex(file: string, text: string): Map<string, string> {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (root as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new UserError(`${file}: no "weight_map" object`);
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard === '' || shard.includes('..') || shard.startsWith('/')) {
      throw new UserError(`${file}: weight_map["${name}"] = ${JSON.stringify(shard)} is not a file name in the folder`);
    }
    map.set(name, shard);
  }
  if (map.size === 0) throw new UserError(`${file}: weight_map is empty`);
  return map;
}
