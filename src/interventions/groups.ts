/**
 * Token groups: named position sets of one prepared input, for interventions.
 *
 *   image      every visual position           text       every other position but the
 *                                              start/end-of-image tokens (Chameleon's
 *                                              sentinels are image side, as in `gate`)
 *   question   the user's question (not the template; from the tokenised prompt)
 *   template   text positions that are neither the question nor BOS
 *   last       the final position              bos        where BOS is
 *   @3-7  @3,5,9  @575                         explicit positions (ranges inclusive)
 *   image[r0:r1,c0:c1]                         patches in rows r0..r1−1, columns c0..c1−1 of
 *                                              the (first) patch grid (ends exclusive, as in
 *                                              Python), and, with several views (LLaVA-NeXT's
 *                                              base view + tiles), the patches of every other
 *                                              view that show the same part of the image
 *   object     patches of every view that show part of the object box (--object-box, a
 *              data set's `box`): the information-flow study's "central object"
 *   image-object  the other patches: "the image without the object"
 *   patches    every visual position that shows part of the image (LLaVA-NeXT: not the
 *              image_newline positions; elsewhere the same as image)
 *   start-of-image, end-of-image   the family's image sentinels (Chameleon's <racm3:break>,
 *              <eoss>: the narrow-gate study's gate); a family without them (LLaVA,
 *              LLaVA-NeXT, InstructBLIP) gets an error that lists the groups it has
 *   last-image    the last image token: the last visual position that is not an
 *              image_newline (Chameleon: the last before <eoss>; LLaVA: the last patch;
 *              LLaVA-NeXT: the last tile patch; InstructBLIP: the last query output) —
 *              the same position as `gate`'s last-image
 *   random-image  one internal image token (an image token but the last, no
 *              image_newline) drawn per item: index ⌊u · n⌋ of the n internal tokens, u
 *              the first mulberry32 draw seeded with FNV-1a-32 of "<seed>:<item id>"
 *              (`RandomDraw`; the commands' --seed), so a run can be redrawn by hand
 * A patch shows a box when their rectangles overlap (the patch's rectangle: its grid's
 * `box` in the original image, split evenly). image_newline positions belong to no box.
 *
 * Every group comes from `prepare` (PositionGroups), never from assumptions about where
 * things sit. An empty group is an error that says why.
 */
import { UserError } from '../errors.ts';
import type { PositionGroups } from '../models/vlm.ts';
import { mulberry32 } from '../util/random.ts';

export const GROUP_HELP =
  'image | patches | text | question | template | last | bos | start-of-image | end-of-image | last-image | random-image | @3-7 | @3,5,9 | image[r0:r1,c0:c1] | object | image-object';

/** What `random-image` is drawn from: the item's id and a seed (file header). */
export interface RandomDraw {
  key: string;
  seed: number;
}

/** FNV-1a, 32 bits, of the UTF-16 code units of `s`. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The image tokens proper (no image_newline), in order. */
function imageTokens(g: PositionGroups): number[] {
  const nl = new Set(g.newlines);
  return range(g.image[0], g.image[1]).filter((i) => !nl.has(i));
}

/** The `random-image` position of one input (file header); null without internal image tokens. */
export function randomImagePosition(g: PositionGroups, draw: RandomDraw): number | null {
  const internal = imageTokens(g).slice(0, -1);
  if (internal.length === 0) return null;
  return internal[Math.floor(mulberry32(fnv1a(`${draw.seed}:${draw.key}`))() * internal.length)];
}

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

/** The sorted positions of a group spec; `seq` is the sequence length; `draw` seeds `random-image` (default: key "", seed 0). */
export function resolveGroup(spec: string, g: PositionGroups, seq: number, draw: RandomDraw = { key: '', seed: 0 }): number[] {
  const s = spec.trim();
  const positions = named(s, g, seq, draw);
  if (positions.length === 0) throw new UserError(`token group "${s}" is empty for this prompt${why(s, g)}`);
  return [...new Set(positions)].sort((a, b) => a - b);
}

function named(s: string, g: PositionGroups, seq: number, draw: RandomDraw): number[] {
  switch (s) {
    case 'start-of-image':
    case 'end-of-image': {
      const at = s === 'start-of-image' ? g.imageStart : g.imageEnd;
      if (at === null) throw new UserError(`token group "${s}": this model's sequence has no ${s} token (LLaVA, LLaVA-NeXT and InstructBLIP have none; Chameleon has); its groups: ${groupsOf(g).join(', ')}`);
      return [at];
    }
    case 'last-image':
      return imageTokens(g).slice(-1);
    case 'random-image': {
      const p = randomImagePosition(g, draw);
      return p === null ? [] : [p];
    }
    case 'image':
      return range(g.image[0], g.image[1]);
    case 'patches': {
      const nl = new Set(g.newlines);
      return range(g.image[0], g.image[1]).filter((i) => !nl.has(i));
    }
    case 'object':
    case 'image-object': {
      if (!g.objectBox) throw new UserError(`token group "${s}" needs an object box (--object-box x0,y0,x1,y1, or a "box" in the data set)`);
      const inside = new Set(patchesShowing(g, g.objectBox));
      return s === 'object' ? [...inside] : patchPositions(g).filter((i) => !inside.has(i));
    }
    case 'text':
      return g.text.filter((i) => i !== g.imageStart && i !== g.imageEnd);
    case 'last':
      return [g.last];
    case 'bos':
      return g.bos === null ? [] : [g.bos];
    case 'question':
      return g.question ? range(g.question[0], g.question[1]) : [];
    case 'template': {
      const q = new Set(g.question ? range(g.question[0], g.question[1]) : []);
      return g.question ? g.text.filter((i) => !q.has(i) && i !== g.bos) : [];
    }
  }
  if (s.startsWith('@')) return explicit(s, seq);
  const box = /^image\[(\d+):(\d+),(\d+):(\d+)\]$/.exec(s);
  if (box) return patchBox(s, box.slice(1).map(Number) as [number, number, number, number], g);
  throw new UserError(`unknown token group "${s}" (known: ${GROUP_HELP})`);
}

function explicit(s: string, seq: number): number[] {
  const out: number[] = [];
  for (const part of s.slice(1).split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UserError(`token group "${s}": "${part}" is not a position or a range a-b`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UserError(`token group "${s}": range ${a}-${b} runs backwards`);
    if (b >= seq) throw new UserError(`token group "${s}": position ${b} is past the sequence (positions 0..${seq - 1})`);
    out.push(...range(a, b + 1));
  }
  return out;
}

function patchBox(s: string, [r0, r1, c0, c1]: [number, number, number, number], g: PositionGroups): number[] {
  const base = g.grids[0];
  if (!base) throw new UserError(`token group "${s}": this model's visual tokens have no patch grid (InstructBLIP's are Q-Former queries), or there is no image`);
  const { rows, cols, first, stride } = base;
  if (r1 > rows || c1 > cols) throw new UserError(`token group "${s}": the patch grid is ${rows}×${cols} (rows 0..${rows - 1}, columns 0..${cols - 1}; ends are exclusive)`);
  if (r1 <= r0 || c1 <= c0) return [];
  const own = range(r0, r1).flatMap((r) => range(c0, c1).map((c) => first + r * stride + c));
  if (g.grids.length === 1) return own;
  // the same part of the image in the other views
  const [x0, y0, x1, y1] = base.box;
  const w = (x1 - x0) / cols;
  const h = (y1 - y0) / rows;
  return [...own, ...patchesShowing(g, [x0 + c0 * w, y0 + r0 * h, x0 + c1 * w, y0 + r1 * h], 1)];
}

/** Every patch position of every grid (no image_newline). */
function patchPositions(g: PositionGroups): number[] {
  return g.grids.flatMap((p) => range(0, p.rows).flatMap((r) => range(0, p.cols).map((c) => p.first + r * p.stride + c)));
}

/** Rectangles that only touch (up to rounding of the fractional patch edges) do not overlap. */
const EDGE = 1e-6;

/** Positions of the patches (of the grids from `from` on) whose rectangle overlaps `box` (original-image pixels). */
export function patchesShowing(g: PositionGroups, [bx0, by0, bx1, by1]: [number, number, number, number], from = 0): number[] {
  return g.grids.slice(from).flatMap((p) => {
    const [x0, y0, x1, y1] = p.box;
    const w = (x1 - x0) / p.cols;
    const h = (y1 - y0) / p.rows;
    const out: number[] = [];
    for (let r = 0; r < p.rows; r++) {
      if (y0 + (r + 1) * h <= by0 + EDGE || y0 + r * h >= by1 - EDGE) continue;
      for (let c = 0; c < p.cols; c++) if (x0 + (c + 1) * w > bx0 + EDGE && x0 + c * w < bx1 - EDGE) out.push(p.first + r * p.stride + c);
    }
    return out;
  });
}

/** The named groups that are not empty for this input (for errors). */
function groupsOf(g: PositionGroups): string[] {
  const has = (n: string) => n !== 'start-of-image' && n !== 'end-of-image' && !['object', 'image-object'].includes(n) && named(n, g, 0, { key: '', seed: 0 }).length > 0;
  const sentinels = [g.imageStart !== null && 'start-of-image', g.imageEnd !== null && 'end-of-image'].filter((n): n is string => !!n);
  return [...['image', 'patches', 'text', 'question', 'template', 'last', 'bos', 'last-image', 'random-image'].filter(has), ...sentinels, ...(g.grids.length ? ['image[r0:r1,c0:c1]', 'object', 'image-object'] : []), '@positions'];
}

function why(s: string, g: PositionGroups): string {
  if (s === 'image') return ' (no image was given)';
  if (s === 'bos') return ' (the sequence has no BOS token, or without a tokenizer it cannot be told)';
  if ((s === 'question' || s === 'template') && !g.question) return ' (the question is known only for a text prompt; with --input-ids use explicit positions such as @3-7)';
  if (s.startsWith('image[')) return ' (the box has no rows or no columns)';
  if (s === 'object') return ' (no patch overlaps the object box)';
  if (s === 'image-object') return ' (every patch overlaps the object box)';
  if (s === 'patches' || s === 'last-image') return ' (no image was given)';
  if (s === 'random-image') return ' (it is drawn from the image tokens but the last, and this input has fewer than two)';
  return '';
}

/** Error unless two groups share no position (methods that need them disjoint). */
export function requireDisjoint(a: { name: string; positions: number[] }, b: { name: string; positions: number[] }): void {
  const B = new Set(b.positions);
  const both = a.positions.filter((p) => B.has(p));
  if (both.length) throw new UserError(`token groups "${a.name}" and "${b.name}" overlap at position(s) ${both.slice(0, 8).join(',')}${both.length > 8 ? ',…' : ''}`);
}
