/**
 * The file access the data set readers need, so one reader serves a folder on disk
 * (fs-node.ts, the CLI) and files the user picked in a browser (src/web/picked-fs.ts).
 * Synchronous on purpose: a data set's index files (captions JSON, examples JSONL) are
 * small, and the page reads them into memory before a reader runs. Image bytes are never
 * read here; readers only name the image files.
 */
export interface DataFs {
  /** The text of a file (UTF-8, a leading BOM dropped); UserError naming it if it cannot be read. */
  readText(path: string): string;
  /** The names in a folder; UserError if it is not one. */
  list(dir: string): string[];
  isFile(path: string): boolean;
  exists(path: string): boolean;
  join(dir: string, name: string): string;
  /** The path as items record it (Node: absolute). */
  resolve(path: string): string;
}
