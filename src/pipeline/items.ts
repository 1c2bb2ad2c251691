/**
 * What the intervention commands share: the prompt of one data item (a VQA question, else
 * `--prompt`, else the default, each in the family's usual form), its preparation, token
 * groups checked against it, and the `--answer TEXT|id:N` token.
 */
import type { DataItem } from '../data/index.ts';
import { UserError } from '../errors.ts';
import { readImageFile } from '../io/load-node.ts';
import type { Box, ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { VERSION } from '../version.ts';
import { resolveGroup, type RandomDraw } from '../interventions/groups.ts';

export const DEFAULT_QUESTION = 'Describe the image.';

/** The prompt for an item: the data set's question if it has one, else the command's. */
export function itemPrompt(m: Pick<ModelInfo, 'promptFor'>, item: Pick<DataItem, 'prompt'>, p: PromptSpec): PromptSpec {
  if (item.prompt !== undefined && p.inputIds === undefined) return { ...p, prompt: m.promptFor(item.prompt, !!p.chat) };
  if (p.prompt === undefined && p.inputIds === undefined) return { ...p, prompt: m.promptFor(DEFAULT_QUESTION, !!p.chat) };
  return p;
}

/** The item's input; its `box` (else `objectBox`, --object-box) becomes the `object` token group. */
export function prepareItem(m: ModelInfo, item: DataItem, p: PromptSpec, padToSquare: boolean, objectBox?: Box): VlmInput {
  const box = item.box ?? objectBox;
  if (box) requirePatchGrid(m);
  return m.prepare(itemPrompt(m, item, p), readImageFile(item.image), { padToSquare, objectBox: box });
}

/** An object box needs visual tokens that are image patches. */
export function requirePatchGrid(m: ModelInfo): void {
  if (!m.capabilities.patchGrid) throw new UserError(`an object box (--object-box, or "box" in the data set) needs a model whose visual tokens are image patches; ${m.name} (${m.family}) has none`);
}

/** A stand-in image: prompt, groups and flags are checked on it before any weight loads. */
export const PROBE_IMAGE = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(128) };

/** A group's positions in `x`; `draw` (the item's id and --seed) picks `random-image`. */
export function groupPositions(spec: string, x: VlmInput, draw?: RandomDraw): number[] {
  return resolveGroup(spec, x.groups, x.ids.length, draw);
}

/**
 * `--answer TEXT` or `--answer id:N` → one token id. Text — digits too: "2" is the word,
 * never token id 2 — is tokenised without BOS; a text that is several tokens is an error
 * naming them, unless `firstToken` (then the first). A first token that is only a word
 * boundary (LLaMA writes a number as "▁" then its digits) is the same for every such answer,
 * so it is refused even with `firstToken`, naming the id to give instead.
 */
export function parseAnswer(m: Pick<ModelInfo, 'tokenizer' | 'lm'>, spec: string, firstToken: boolean, flag = '--answer'): number {
  const explicit = /^id:(.*)$/.exec(spec.trim());
  if (explicit) {
    if (!/^\d+$/.test(explicit[1])) throw new UserError(`${flag} ${spec}: give a token id as id:N, e.g. id:2`);
    const id = Number(explicit[1]);
    if (id >= m.lm.vocab_size) throw new UserError(`${flag} ${spec}: token id outside the vocabulary (0..${m.lm.vocab_size - 1})`);
    return id;
  }
  const tok = m.tokenizer;
  if (!tok) throw new UserError(`${flag} ${JSON.stringify(spec)}: the checkpoint has no tokenizer.json; give the answer as a token id, id:N`);
  const ids = tok.encode(spec, { addBos: false, addEos: false });
  if (ids.length === 0) throw new UserError(`${flag} ${JSON.stringify(spec)} tokenises to nothing`);
  if (ids.length === 1) return ids[0];
  const what = `${flag} ${JSON.stringify(spec)} is ${ids.length} tokens (${ids.map((i) => JSON.stringify(tok.idToToken(i))).join(' ')})`;
  if (tok.decode([ids[0]]).trim() === '') throw new UserError(`${what}, the first only a word boundary, the same for every answer written so; give the token to measure as id:N, e.g. id:${ids[1]}`);
  if (!firstToken) throw new UserError(`${what}; give a one-token answer, or add --first-token to use the first`);
  return ids[0];
}

/** The head of every per-item result: how it was made and of what. */
export function resultHeader(m: Pick<Vlm, 'name' | 'family'>, item: Pick<DataItem, 'id' | 'image'>): Record<string, unknown> {
  return { phaselens_version: VERSION, model: m.name, model_family: m.family, id: item.id, image: item.image };
}

/** The options every output records about the weights and the prompt. */
export function promptOptions(m: Pick<Vlm, 'weightDtypes' | 'precision'>, p: PromptSpec, padToSquare: boolean): Record<string, unknown> {
  return {
    weight_dtypes: m.weightDtypes,
    precision: m.precision,
    prompt: p.prompt ?? null,
    input_ids: p.inputIds ?? null,
    qformer_input_ids: p.qformerInputIds ?? null,
    chat: !!p.chat,
    pad_to_square: padToSquare,
  };
}
