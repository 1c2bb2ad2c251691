/**
 * Where checkpoint bytes come from. The safetensors reader only ever asks for byte
 * ranges, so the same code reads a local file under Node (source-node.ts) and a
 * user-picked File in the browser (source-blob.ts), and never needs a whole file in
 * memory.
 */
export interface ByteSource {
  /** For error messages: a path or file name. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Bytes [offset, offset + length). With `into` (at least `length` bytes) the data is
   * written there and a view of it returned, so streaming can reuse one buffer.
   * Rejects if the range runs past the end.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A checkpoint folder: named files, some of which may be missing. */
export interface DirectorySource {
  /** For error messages: the folder's path or name. */
  readonly name: string;
  /** Opens `file` (a name relative to the folder), or undefined if there is none. */
  open(file: string): Promise<ByteSource | undefined>;
  /** The whole text of a small file (config, index), or undefined if there is none. */
  readText(file: string): Promise<string | undefined>;
}
