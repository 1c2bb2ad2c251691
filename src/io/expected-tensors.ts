/**
 * The expected-tensor list of a checkpoint and its comparison with what a folder holds:
 * every tensor a config implies, with its shape, under the canonical names (the module
 * tree of HF's modeling code as the published checkpoints store it), read in whichever
 * of the family's key layouts (`layouts.ts`) explains the stored names best.
 *
 * The lists themselves are written next to each module's loader, one tree per model
 * file (`clipVisionTensors` in models/clip.ts, `llamaTensors` in models/llama.ts, …);
 * the family table (models/registry.ts) gives each family's list and layouts.
 */
import { canonicalName, storedName, type Layout } from './layouts.ts';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Present in some checkpoints only (e.g. lm_head when embeddings are tied). */
  optional?: boolean;
  /** Optional, but the generators (make-tiny, make-random) write it (Chameleon's VQ model). */
  generated?: boolean;
}

/** Non-persistent buffers that older exports saved; ignored when present. */
const IGNORED = [/\.embeddings\.position_ids$/, /\.rotary_emb\.inv_freq$/];

export function linearTensors(out: ExpectedTensor[], prefix: string, outF: number, inF: number, bias: boolean): void {
  out.push({ name: `${prefix}.weight`, shape: [outF, inF] });
  if (bias) out.push({ name: `${prefix}.bias`, shape: [outF] });
}

export function layerNormTensors(out: ExpectedTensor[], prefix: string, size: number): void {
  out.push({ name: `${prefix}.weight`, shape: [size] }, { name: `${prefix}.bias`, shape: [size] });
}

export interface TensorMatch {
  /** The layout the names were read in. */
  layout: Layout;
  /** How many stored names `layout` maps onto an expected tensor. */
  mapped: number;
  /** Stored name → canonical name, for every stored name a rule of `layout` matches. */
  canonical: Map<string, string>;
  /** Checkpoint name (as stored) for each expected name that was found. */
  found: Map<string, string>;
  missing: ExpectedTensor[];
  /** Stored names no rule of `layout` matches (the folder is in no known layout). */
  unmatched: string[];
  /** Stored names in `layout` that this config does not expect, or a second copy of one. */
  unexpected: string[];
  wrongShape: { name: string; expected: number[]; found: number[] }[];
  /** Buffers that are present but not needed (see IGNORED). */
  ignored: string[];
}

export type TensorTable = ReadonlyMap<string, { shape: readonly number[] }>;

/** Compares the expected list with a checkpoint's tensor table read in `layout`. */
export function matchTensors(expected: readonly ExpectedTensor[], actual: TensorTable, layout: Layout): TensorMatch {
  const byName = new Map(expected.map((e) => [e.name, e]));
  const canonical = new Map<string, string>();
  const found = new Map<string, string>();
  const unmatched: string[] = [];
  const unexpected: string[] = [];
  const ignored: string[] = [];
  const wrongShape: TensorMatch['wrongShape'] = [];
  for (const [stored, { shape }] of actual) {
    if (IGNORED.some((re) => re.test(stored))) {
      ignored.push(stored);
      continue;
    }
    const name = canonicalName(layout, stored);
    if (name === null) {
      unmatched.push(stored);
      continue;
    }
    canonical.set(stored, name);
    const e = byName.get(name);
    if (!e || found.has(name)) {
      unexpected.push(stored);
      continue;
    }
    found.set(name, stored);
    if (shape.length !== e.shape.length || shape.some((d, i) => d !== e.shape[i])) {
      wrongShape.push({ name: stored, expected: e.shape, found: [...shape] });
    }
  }
  const missing = expected.filter((e) => !e.optional && !found.has(e.name));
  return { layout, mapped: found.size, canonical, found, missing, unmatched, unexpected, wrongShape, ignored };
}

/**
 * Reads the checkpoint in each of its family's layouts and keeps the one that maps the
 * most stored names onto expected tensors (the first listed on a tie).
 */
export function bestLayoutMatch(expected: readonly ExpectedTensor[], layouts: readonly Layout[], actual: TensorTable): TensorMatch {
  let best: TensorMatch | undefined;
  for (const layout of layouts) {
    const m = matchTensors(expected, actual, layout);
    if (!best || m.mapped > best.mapped) best = m;
  }
  return best!;
}

function firstFew(items: string[], n = 5): string {
  const head = items.slice(0, n).join(', ');
  return items.length > n ? `${head}, … (${items.length - n} more)` : head;
}

/** One line per kind of problem, or [] when the checkpoint matches; names as the folder stores them. */
export function describeMatch(m: TensorMatch, expectedCount: number, foundCount: number): string[] {
  const lines: string[] = [];
  if (m.unmatched.length) {
    lines.push(
      `${m.unmatched.length} of ${foundCount} tensor names fit no known layout; the closest is "${m.layout.id}" (${m.layout.writtenBy}), ` +
        `which maps ${m.mapped} of ${expectedCount}; first unmatched: ${firstFew(m.unmatched)}`,
    );
  }
  if (m.missing.length) {
    // named as the folder's layout would store them
    const names = m.missing.map((e) => `${storedName(m.layout, e.name)} [${e.shape.join(', ')}]`);
    lines.push(`${m.missing.length} of ${expectedCount} expected tensors are missing: ${firstFew(names)}`);
  }
  if (m.unexpected.length) {
    lines.push(`${m.unexpected.length} of ${foundCount} tensors in the checkpoint are unexpected for this config: ${firstFew(m.unexpected)}`);
  }
  if (m.wrongShape.length) {
    lines.push(
      `${m.wrongShape.length} tensors have the wrong shape for this config: ${firstFew(
        m.wrongShape.map((w) => `${w.name} is [${w.found.join(', ')}], expected [${w.expected.join(', ')}]`),
      )}`,
    );
  }
  return lines;
}
