/**
 * Hook names, TransformerLens style, built in one place:
 *   actName('resid_post', 3)          → 'lm.blocks.3.resid_post'
 *   actName('attn.pattern', 3, 'vision') → 'vision.blocks.3.attn.pattern'
 *   actName('embed')                  → 'lm.embed'
 */
export type Tower = 'lm' | 'vision' | 'qformer';

export function actName(site: string, layer?: number, tower: Tower = 'lm'): string {
  return layer === undefined ? `${tower}.${site}` : `${tower}.blocks.${layer}.${site}`;
}
