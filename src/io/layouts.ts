/**
 * Checkpoint key layouts: declarative rename rules from the tensor names a folder stores
 * to the one canonical module tree the model files load by (the names of the hub
 * checkpoints, which each model file's tensor tree spells out once). Each family lists
 * its layouts in its model file (LLAVA_LAYOUTS in models/llava.ts, …) and the family
 * table (models/registry.ts) hands them to the checkpoint check. The rules are written
 * the way transformers 5's `conversion_mapping.py` writes its `WeightRenaming` rules,
 * but from disk to our tree.
 *
 * A rule renames a prefix: `from` ending in `.` is a prefix (`vision_tower.embeddings.`),
 * otherwise an exact name (`query_tokens`); the first rule that matches wins, and a name
 * no rule of a layout matches is not in that layout. Rules are plain prefixes so that they
 * also run backwards (canonical → stored), which is how make-tiny writes other layouts.
 */
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
export function same(...names: string[]): KeyRule[] {
  return names.map((n) => ({ from: n, to: n }));
}

/** `from{sub}.` → `to{sub}.` for each listed child module. */
export function children(from: string, to: string, subs: readonly string[]): KeyRule[] {
  return subs.map((s) => ({ from: `${from}${s}.`, to: `${to}${s}.` }));
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
