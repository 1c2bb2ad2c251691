/**
 * `--limit N --seed S`: a reproducible random sample of N items, as the paper evaluates a
 * random 400 of COCO val2017.
 *
 * The rule (so anyone can redraw the same sample):
 * 1. sort the items by id (UTF-16 code units) — the sample depends only on the set of
 *    items, never on the order of the annotation file;
 * 2. shuffle that list with Fisher–Yates driven by mulberry32(S), stopping after the first
 *    N positions: for i = 0 .. N−1, j = i + ⌊u · (n − i)⌋ with u the next mulberry32 draw
 *    in [0, 1), swap(i, j);
 * 3. the first N are the sample; they are returned in the data set's own order.
 *
 * Consequences: the same S always gives the same sample; a larger N with the same S
 * contains the smaller sample (so raising `--limit` on a finished output folder only adds
 * images, and the runner skips the finished ones); N ≥ n gives every item. S is an integer
 * in [0, 2³²); the default is 0. Without a limit every item is kept, in file order.
 */
import { UserError } from '../errors.ts';
import { mulberry32 } from '../util/random.ts';

export { mulberry32 };

export const DEFAULT_SEED = 0;

/**
 * The sample described above. `limit` undefined keeps everything. UserError for a limit
 * that is not a positive integer or a seed that is not an integer in [0, 2³²).
 */
export function sampleItems<T extends { id: string }>(items: readonly T[], limit?: number, seed: number = DEFAULT_SEED): T[] {
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new UserError(`--seed must be an integer from 0 to ${2 ** 32 - 1}, got ${seed}`);
  if (limit === undefined) return items.slice();
  if (!Number.isInteger(limit) || limit < 1) throw new UserError(`--limit must be a positive integer, got ${limit}`);
  if (limit >= items.length) return items.slice();

  const order = items.map((_, i) => i).sort((a, b) => (items[a].id < items[b].id ? -1 : items[a].id > items[b].id ? 1 : a - b));
  const rand = mulberry32(seed);
  for (let i = 0; i < limit; i++) {
    const j = i + Math.floor(rand() * (order.length - i));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const chosen = order.slice(0, limit).sort((a, b) => a - b);
  return chosen.map((i) => items[i]);
}
