/**
 * The checkpoint key layouts of each family: declarative rename rules from the tensor
 * names a folder stores to the one canonical module tree the model files load by (the
 * names of the hub checkpoints llava-hf/llava-1.5-* and Salesforce/instructblip-*, which
 * `expected-tensors.ts` spells out once). The table is written the way transformers 5's
 * `conversion_mapping.py` writes its `WeightRenaming` rules, but from disk to our tree.
 *
 * A rule renames a prefix: `from` ending in `.` is a prefix (`vision_tower.embeddings.`),
 * otherwise an exact name (`query_tokens`); the first rule that matches wins, and a name
 * no rule of a layout matches is not in that layout. Rules are plain prefixes so that they
 * also run backwards (canonical → stored), which is how make-tiny writes other layouts.
 *
 * What each layout is, checked by test/io/layouts.test.ts against folders written by
 * transformers 5.18's `save_pretrained`:
 * - llava `hub`: the published llava-hf folders, and what transformers < 4.52 saved.
 * - llava `transformers4.52`: the module tree of LlavaForConditionalGeneration since
 *   transformers 4.52 (`model.state_dict()`, and safetensors written from it without
 *   `save_pretrained`): `model.` in front, `lm_head` on top, the vision tower with
 *   `vision_model.` (4.x, a CLIPVisionModel) or without it (5.x).
 * - llava `transformers5`: what transformers 5's `save_pretrained` writes: the hub layout
 *   except that the vision tower drops `vision_model.` (`vision_tower.embeddings.…`).
 * - instructblip `hub`: the published Salesforce folders; transformers 4 and 5 both save
 *   InstructBlipForConditionalGeneration under exactly these names.
 */
import type { ModelConfig } from './config.ts';

export type Family = ModelConfig['model_type'];

export interface KeyRule {
  /** Stored-name prefix (ends with `.`) or exact name. */
  from: string;
  /** What `from` becomes in the canonical tree. */
  to: string;
}

export interface Layout {
  /** Short id that `inspect` prints and `make-tiny --layout` takes. */
  id: string;
  /** Who writes folders in this layout. */
  writtenBy: string;
  rules: readonly KeyRule[];
}

/** Rules that keep names as they are. */
function same(...names: string[]): KeyRule[] {
  return names.map((n) => ({ from: n, to: n }));
}

/** `from{sub}.` → `to{sub}.` for each listed child module. */
function children(from: string, to: string, subs: readonly string[]): KeyRule[] {
  return subs.map((s) => ({ from: `${from}${s}.`, to: `${to}${s}.` }));
}

/** The direct children of CLIPVisionTransformer (modeling_clip.py). */
const CLIP_VISION = ['embeddings', 'pre_layrnorm', 'encoder', 'post_layernorm'];

const LLAVA: readonly Layout[] = [
  {
    id: 'hub',
    writtenBy: 'the llava-hf checkpoints on the hub; transformers < 4.52 save_pretrained',
    rules: same('vision_tower.vision_model.', 'multi_modal_projector.', 'language_model.model.', 'language_model.lm_head.'),
  },
  {
    id: 'transformers4.52',
    writtenBy: "the module tree of transformers >= 4.52 (model.state_dict())",
    rules: [
      { from: 'model.vision_tower.vision_model.', to: 'vision_tower.vision_model.' },
      ...children('model.vision_tower.', 'vision_tower.vision_model.', CLIP_VISION),
      { from: 'model.multi_modal_projector.', to: 'multi_modal_projector.' },
      { from: 'model.language_model.', to: 'language_model.model.' },
      { from: 'lm_head.', to: 'language_model.lm_head.' },
    ],
  },
  {
    id: 'transformers5',
    writtenBy: "transformers 5's save_pretrained",
    rules: [...children('vision_tower.', 'vision_tower.vision_model.', CLIP_VISION), ...same('multi_modal_projector.', 'language_model.model.', 'language_model.lm_head.')],
  },
];

const INSTRUCTBLIP: readonly Layout[] = [
  {
    id: 'hub',
    writtenBy: 'the Salesforce checkpoints on the hub; transformers 4 and 5 save_pretrained',
    rules: same('vision_model.', 'query_tokens', 'qformer.', 'language_projection.', 'language_model.model.', 'language_model.lm_head.'),
  },
];

export const LAYOUTS: Readonly<Record<Family, readonly Layout[]>> = { llava: LLAVA, instructblip: INSTRUCTBLIP };

/** The layout `id` of `family`, or undefined. */
export function findLayout(family: Family, id: string): Layout | undefined {
  return LAYOUTS[family].find((l) => l.id === id);
}

function renamed(name: string, from: string, to: string): string | null {
  if (from.endsWith('.')) return name.startsWith(from) ? to + name.slice(from.length) : null;
  return name === from ? to : null;
}

/** The canonical name of a stored tensor name under `layout`, or null when no rule matches. */
export function canonicalName(layout: Layout, stored: string): string | null {
  for (const r of layout.rules) {
    const n = renamed(stored, r.from, r.to);
    if (n !== null) return n;
  }
  return null;
}

/** The name `layout` stores a canonical tensor under (the first rule that produces it). */
export function storedName(layout: Layout, canonical: string): string {
  for (const r of layout.rules) {
    const n = renamed(canonical, r.to, r.from);
    if (n !== null) return n;
  }
  throw new Error(`layout ${layout.id} has no rule for ${canonical}`);
}
