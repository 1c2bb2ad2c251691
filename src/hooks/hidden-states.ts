/**
 * The hook that carries HF `output_hidden_states` index l of the language model:
 *   0        lm.blocks.0.resid_pre      (input embeddings, image features spliced in)
 *   1..L−1   lm.blocks.{l−1}.resid_post
 *   L        lm.ln_final.normalized     (HF applies the final norm to the last entry)
 * `lm.blocks.{L−1}.resid_post` is the same layer before the final norm ("prenorm").
 */
import { actName } from './names.ts';

export function hiddenStateHook(l: number, L: number): string {
  if (l === 0) return actName('resid_pre', 0);
  if (l === L) return actName('ln_final.normalized');
  return actName('resid_post', l - 1);
}

export function prenormHook(L: number): string {
  return actName('resid_post', L - 1);
}

/** Map hook name → hidden-state index, for the L + 1 indices. */
export function hiddenStateIndex(L: number): Map<string, number> {
  return new Map(Array.from({ length: L + 1 }, (_, l) => [hiddenStateHook(l, L), l]));
}
