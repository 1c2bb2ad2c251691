/**
 * Token groups: named position sets of one prepared input, for interventions.
 *
 *   image      every visual position           text       every other position
 *   question   the user's question (not the template; from the tokenised prompt)
 *   template   text positions that are neither the question nor BOS
 *   last       the final position              bos        where BOS is
 *   @3-7  @3,5,9  @575                         explicit positions (ranges inclusive)
 *   image[r0:r1,c0:c1]                         patches in rows r0..r1−1, columns c0..c1−1 of
 *                                              the patch grid (LLaVA; ends exclusive, as in Python)
 *
 * Every group comes from `prepare` (PositionGroups), never from assumptions about where
 * things sit. An empty group is an error that says why.
 */
import { UserError } from '../errors.ts';
import type { PositionGroups } from '../models/vlm.ts';

export const GROUP_HELP = 'image | text | question | template | last | bos | @3-7 | @3,5,9 | image[r0:r1,c0:c1]';

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

/** The sorted positions of a group spec; `seq` is the sequence length. */
export function resolveGroup(spec: string, g: PositionGroups, seq: number): number[] {
  const s = spec.trim();
  const positions = named(s, g, seq);
  if (positions.length === 0) throw new UserError(`token group "${s}" is empty for this prompt${why(s, g)}`);
  return [...new Set(positions)].sort((a, b) => a - b);
}

function named(s: string, g: PositionGroups, seq: number): number[] {
  switch (s) {
    case 'image':
      return range(g.image[0], g.image[1]);
    case 'text':
      return g.text;
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
  if (!g.grid) throw new UserError(`token group "${s}": this model's visual tokens have no patch grid (InstructBLIP's are Q-Former queries), or there is no image`);
  const { rows, cols, first } = g.grid;
  if (r1 > rows || c1 > cols) throw new UserError(`token group "${s}": the patch grid is ${rows}×${cols} (rows 0..${rows - 1}, columns 0..${cols - 1}; ends are exclusive)`);
  return range(r0, r1).flatMap((r) => range(c0, c1).map((c) => first + r * cols + c));
}

function why(s: string, g: PositionGroups): string {
  if (s === 'image') return ' (no image was given)';
  if (s === 'bos') return ' (the sequence has no BOS token, or without a tokenizer it cannot be told)';
  if ((s === 'question' || s === 'template') && !g.question) return ' (the question is known only for a text prompt; with --input-ids use explicit positions such as @3-7)';
  if (s.startsWith('image[')) return ' (the box has no rows or no columns)';
  return '';
}

/** Error unless two groups share no position (methods that need them disjoint). */
export function requireDisjoint(a: { name: string; positions: number[] }, b: { name: string; positions: number[] }): void {
  const B = new Set(b.positions);
  const both = a.positions.filter((p) => B.has(p));
  if (both.length) throw new UserError(`token groups "${a.name}" and "${b.name}" overlap at position(s) ${both.slice(0, 8).join(',')}${both.length > 8 ? ',…' : ''}`);
}
