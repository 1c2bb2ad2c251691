/**
 * What the intervention commands share: the prompt of one data item (a VQA question, else
 * `--prompt`, else the default, each in the family's usual form), its preparation, token
 * groups checked against it, and the `--answer TEXT|ID` token.
 */
import type { DataItem } from '../data/index.ts';
import { UserError } from '../errors.ts';
import { readImageFile } from '../io/load-node.ts';
import type { ModelInfo, PromptSpec, Vlm, VlmInput } from '../models/vlm.ts';
import { VERSION } from '../version.ts';
import { resolveGroup } from '../interventions/groups.ts';

export const DEFAULT_QUESTION = 'Describe the image.';

/** The prompt for an item: the data set's question if it has one, else the command's. */
export function itemPrompt(m: Pick<ModelInfo, 'promptFor'>, item: Pick<DataItem, 'prompt'>, p: PromptSpec): PromptSpec {
  if (item.prompt !== undefined && p.inputIds === undefined) return { ...p, prompt: m.promptFor(item.prompt, !!p.chat) };
  if (p.prompt === undefined && p.inputIds === undefined) return { ...p, prompt: m.promptFor(DEFAULT_QUESTION, !!p.chat) };
  return p;
}

export function prepareItem(m: ModelInfo, item: DataItem, p: PromptSpec, padToSquare: boolean): VlmInput {
  return m.prepare(itemPrompt(m, item, p), readImageFile(item.image), { padToSquare });
}

/** A stand-in image: prompt, groups and flags are checked on it before any weight loads. */
export const PROBE_IMAGE = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(128) };

export function groupPositions(spec: string, x: VlmInput): number[] {
  return resolveGroup(spec, x.groups, x.ids.length);
}

/**
 * `--answer ID` or `--answer TEXT` → one token id. Text is tokenised without BOS; a text
 * that is several tokens is an error naming them, unless `firstToken` (then the first).
 */
export function parseAnswer(m: Pick<ModelInfo, 'tokenizer' | 'lm'>, spec: string, firstToken: boolean, flag = '--answer'): number {
  if (/^\d+$/.test(spec.trim())) {
    const id = Number(spec);
    if (id >= m.lm.vocab_size) throw new UserError(`${flag} ${spec}: token id outside the vocabulary (0..${m.lm.vocab_size - 1})`);
    return id;
  }
  if (!m.tokenizer) throw new UserError(`${flag} ${JSON.stringify(spec)}: the checkpoint has no tokenizer.json; give the answer as a token id`);
  const ids = m.tokenizer.encode(spec, { addBos: false, addEos: false });
  if (ids.length === 0) throw new UserError(`${flag} ${JSON.stringify(spec)} tokenises to nothing`);
  if (ids.length > 1 && !firstToken) {
    const pieces = ids.map((i) => JSON.stringify(m.tokenizer!.idToToken(i))).join(' ');
    throw new UserError(`${flag} ${JSON.stringify(spec)} is ${ids.length} tokens (${pieces}); give a one-token answer, or add --first-token to use the first`);
  }
  return ids[0];
}

/** The head of every per-item result: how it was made and of what. */
export function resultHeader(m: Pick<Vlm, 'name' | 'family'>, item: Pick<DataItem, 'id' | 'image'>): Record<string, unknown> {
  return { phaselens_version: VERSION, model: m.name, model_family: m.family, id: item.id, image: item.image };
}

/** The options every output records about the weights and the prompt. */
export function promptOptions(m: Pick<Vlm, 'weightDtypes'>, p: PromptSpec, padToSquare: boolean): Record<string, unknown> {
  return {
    weight_dtypes: m.weightDtypes,
    prompt: p.prompt ?? null,
    input_ids: p.inputIds ?? null,
    qformer_input_ids: p.qformerInputIds ?? null,
    chat: !!p.chat,
    pad_to_square: padToSquare,
  };
}
