/**
 * Which hidden-state layers and which visual tokens LogitLens covers (`--lens-layers`,
 * `--lens-positions`). Full-vocabulary LogitLens on every visual token at every layer is
 * the paper's method and the default; on a 7B model it costs about as much as the prefill
 * itself, so a run can restrict it.
 *
 * Syntax of a spec (the same for both flags):
 *
 *   all               every index (the default)
 *   none              no index: the lens is not run at all
 *   ITEM[,ITEM...]    the union of the items, each one of
 *     N                 one index
 *     A-B               A..B, both ends included
 *     A:B[:S]           a Python slice: A, A+S, A+2S, … below B; A defaults to 0, B to the end,
 *                       S to 1 (`::4` = every 4th index, `100:` = from 100 on)
 *
 * Indices: layers are hidden-state indices 0..L (HF output_hidden_states: 0 = input
 * embeddings, L = after the final norm); positions count the visual tokens from 0 (the
 * first position of `tokens.image`) to n_img − 1. An index or a slice end past the model's
 * range, an empty spec, a backwards range, a zero step, or a spec that selects nothing is
 * refused with a UserError. When either spec selects nothing, the lens is off (both lists
 * empty): outputs do not depend on the other flag then.
 *
 * Every output records the covered sets in canonical form (`canonicalSpec`): `all`, `none`,
 * or ascending runs (`0-3,8,16:33:4`), so two runs with the same coverage carry the same
 * option strings whatever the user typed.
 */
import { UserError } from '../errors.ts';

export const LENS_SPEC_HELP = 'all | none | comma list of N, A-B (inclusive), A:B:S (Python slice, e.g. ::4)';

/** What a spec indexes, for messages: `{ flag: '--lens-layers', what: 'layer', count: L + 1 }`. */
export interface SpecDomain {
  flag: string;
  /** Singular noun of one index whose plural takes an s, e.g. "layer" or "visual-token position". */
  what: string;
  /** Indices run 0..count−1. */
  count: number;
}

/** The indices a spec selects, ascending and unique. */
export function parseIndexSpec(spec: string, dom: SpecDomain): number[] {
  const { flag, what, count } = dom;
  const s = spec.trim();
  const bad = (why: string): never => {
    throw new UserError(`${flag} ${JSON.stringify(spec)}: ${why} (${flag} takes ${LENS_SPEC_HELP}; this model's ${what}s: 0..${count - 1})`);
  };
  if (s === '') bad('empty');
  if (s === 'all') return Array.from({ length: count }, (_, i) => i);
  if (s === 'none') return [];
  const out = new Set<number>();
  const index = (t: string, part: string): number => {
    if (!/^\d+$/.test(t)) bad(`"${part}" is not an index N, a range A-B or a slice A:B:S`);
    return Number(t);
  };
  const inRange = (i: number, part: string) => {
    if (i >= count) bad(`${what} ${i} in "${part}" is outside 0..${count - 1}`);
  };
  for (const raw of s.split(',')) {
    const part = raw.trim();
    if (part === '') bad('an empty item between commas');
    if (part.includes(':')) {
      const f = part.split(':').map((x) => x.trim());
      if (f.length > 3) bad(`"${part}" has more than two colons`);
      const a = f[0] === '' ? 0 : index(f[0], part);
      const b = f[1] === '' ? count : index(f[1], part);
      const st = f.length < 3 || f[2] === '' ? 1 : index(f[2], part);
      if (st < 1) bad(`the step of "${part}" must be at least 1`);
      inRange(a, part);
      if (b > count) bad(`the end of "${part}" is past ${count} (the slice end is exclusive)`);
      if (b <= a) bad(`"${part}" selects nothing (the end is exclusive)`);
      for (let i = a; i < b; i += st) out.add(i);
    } else if (part.includes('-')) {
      const m = /^(\d+)\s*-\s*(\d+)$/.exec(part);
      if (!m) bad(`"${part}" is not an index N, a range A-B or a slice A:B:S`);
      const [a, b] = [Number(m![1]), Number(m![2])];
      if (b < a) bad(`"${part}" runs backwards`);
      inRange(b, part);
      for (let i = a; i <= b; i++) out.add(i);
    } else {
      const i = index(part, part);
      inRange(i, part);
      out.add(i);
    }
  }
  return [...out].sort((x, y) => x - y);
}

/** `all`, `none`, or the ascending list as runs: `A-B` (step 1), `A:B:S` (step S > 1, 3+ terms), single indices. */
export function canonicalSpec(indices: readonly number[], count: number): string {
  if (indices.length === 0) return 'none';
  if (indices.length === count && indices.every((v, i) => v === i)) return 'all';
  const parts: string[] = [];
  let i = 0;
  while (i < indices.length) {
    const a = indices[i];
    if (i + 1 < indices.length) {
      const d = indices[i + 1] - a;
      let j = i + 1;
      while (j + 1 < indices.length && indices[j + 1] - indices[j] === d) j++;
      const last = indices[j];
      if (d === 1) {
        parts.push(`${a}-${last}`);
        i = j + 1;
        continue;
      }
      if (j - i + 1 >= 3) {
        parts.push(`${a}:${last + 1}:${d}`);
        i = j + 1;
        continue;
      }
    }
    parts.push(String(a));
    i++;
  }
  return parts.join(',');
}

/** What LogitLens covers in one run: hidden-state indices and visual-token positions (0 = first visual token). */
export interface LensCoverage {
  layers: number[];
  positions: number[];
}

export interface LensSpecs {
  /** Default `all`. */
  lensLayers?: string;
  /** Default `all`. */
  lensPositions?: string;
}

/**
 * Both specs resolved for a model with `numLayers` decoder layers and `nVisual` visual
 * tokens; UserError for a bad spec. Either one empty → both empty (the lens is off).
 */
export function resolveLens(o: LensSpecs, numLayers: number, nVisual: number): LensCoverage {
  const layers = parseIndexSpec(o.lensLayers ?? 'all', { flag: '--lens-layers', what: 'layer', count: numLayers + 1 });
  const positions = parseIndexSpec(o.lensPositions ?? 'all', { flag: '--lens-positions', what: 'visual-token position', count: nVisual });
  return layers.length && positions.length ? { layers, positions } : { layers: [], positions: [] };
}

/** The coverage an analyze result was made with; results written before the lens could be restricted covered everything. */
export function coverageOf(m: {
  tokens: { image: readonly [number, number] };
  logit_lens?: { top_ids: readonly unknown[]; layers?: number[]; positions?: number[] };
}): LensCoverage | null {
  const lens = m.logit_lens;
  if (!lens) return null;
  const n = m.tokens.image[1] - m.tokens.image[0];
  return {
    layers: lens.layers ?? Array.from({ length: lens.top_ids.length }, (_, l) => l),
    positions: lens.positions ?? Array.from({ length: n }, (_, p) => p),
  };
}
