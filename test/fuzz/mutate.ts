/**
 * Mutations for the fuzzer, all drawn from one seeded generator so a case is reproduced
 * from (target, case index) alone: structured edits of JSON values (the fields parsers
 * trust: lengths, offsets, shapes, dtypes, sizes), textual edits of JSON and templates
 * (syntax), and byte edits of binary files.
 */
import { mulberry32 } from '../../src/data/index.ts';

export class Rng {
  private next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed >>> 0);
  }
  float(): number {
    return this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Values that break parsers which trust a field's type or range. */
const NASTY: readonly unknown[] = [
  0, -1, 1, 2, 3, 7, 0.5, -0.0, 1e-300, 1e300, 2 ** 31, 2 ** 32 + 1, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER + 2,
  '', '0', '12', 'F16', 'BF16', 'F64', 'I8', 'llava', 'instructblip', 'x'.repeat(300), '\u0000', '../../etc/passwd', 'a/b',
  true, false, null, [], [0], [1, 2], [-1, 4], [2 ** 40, 2 ** 40], ['1'], {}, { a: 1 },
];

/** A random value: a nasty one, or a small perturbation of `v` when it is a number. */
export function nastyValue(r: Rng, v?: unknown): unknown {
  if (typeof v === 'number' && r.chance(0.4)) return r.pick([v + 1, v - 1, v * 2, -v, v + 0.5, v * 1000, 0]);
  if (Array.isArray(v) && v.length && r.chance(0.3)) return r.chance(0.5) ? v.slice(0, r.int(v.length)) : [...v, structuredClone(r.pick(NASTY))];
  // a copy: later edits of the case must not reach the shared list
  return structuredClone(r.pick(NASTY));
}

type Json = unknown;

/** Every path to a value inside `v` (objects and arrays), the root excluded. */
function paths(v: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (Array.isArray(v)) {
    // long arrays: a few elements stand for all of them
    const idx = v.length > 8 ? [0, 1, v.length - 1] : v.map((_, i) => i);
    for (const i of idx) {
      out.push([...prefix, i]);
      paths(v[i], [...prefix, i], out);
    }
  } else if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      out.push([...prefix, k]);
      paths((v as Record<string, Json>)[k], [...prefix, k], out);
    }
  }
  return out;
}

/** `v` with 1–3 fields replaced, deleted, copied under a new key or replaced by a copy of the whole. */
export function mutateJson(r: Rng, v: Json): Json {
  const root = structuredClone(v);
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const all = paths(root);
    if (!all.length) break;
    const p = r.pick(all);
    let parent = root as Record<string | number, Json>;
    for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
    const key = p[p.length - 1];
    const op = r.int(10);
    if (op < 6) parent[key] = nastyValue(r, parent[key]);
    else if (op < 8) {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
    } else if (op < 9) parent[`${String(key)}_`] = structuredClone(parent[key]);
    else parent[key] = structuredClone(v);
  }
  return root;
}

/** `s` with a few characters inserted, deleted or replaced, or cut short. */
export function mutateText(r: Rng, s: string): string {
  const chars = '{}[]":,\\ \n0-9eE.+tfnul"\'<>%/\u00e9\u{1F600}\u0000';
  let out = s;
  const n = 1 + r.int(4);
  for (let i = 0; i < n; i++) {
    const at = r.int(out.length + 1);
    const op = r.int(4);
    if (op === 0) out = out.slice(0, at) + chars[r.int(chars.length)] + out.slice(at);
    else if (op === 1) out = out.slice(0, at) + out.slice(at + 1 + r.int(8));
    else if (op === 2) out = out.slice(0, at) + chars[r.int(chars.length)] + out.slice(at + 1);
    else out = out.slice(0, at);
  }
  return out;
}

/** `b` with bytes flipped, overwritten, inserted, deleted, or cut short; `hot` bytes (headers) are hit more often. */
export function mutateBytes(r: Rng, b: Uint8Array, hot = 64): Uint8Array {
  let out: Uint8Array = new Uint8Array(b); // a copy (Buffer.slice would share the bytes)
  const n = 1 + r.int(6);
  for (let i = 0; i < n; i++) {
    const at = r.chance(0.7) ? r.int(Math.min(hot, out.length)) : r.int(out.length);
    const op = r.int(6);
    if (op <= 1 && out.length) out[at] ^= 1 << r.int(8);
    else if (op === 2 && out.length) out[at] = r.pick([0, 0xff, 0x7f, 0x80, r.int(256)]);
    else if (op === 3) out = concat(out.subarray(0, at), Uint8Array.of(r.int(256)), out.subarray(at));
    else if (op === 4) out = concat(out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + r.int(16))));
    else out = out.slice(0, r.int(out.length + 1));
  }
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
