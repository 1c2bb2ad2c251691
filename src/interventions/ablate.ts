/**
 * Token ablation ("The Narrow Gate", arXiv 2412.06646): the attention weights from every
 * query to the chosen key positions are zeroed after the softmax, without renormalising,
 * in chosen layers (and heads), during prefill and generation.
 *
 * How: out_q = Σ_j α_qj v_j, so zeroing α_qj for j ∈ S for every query is exactly zeroing
 * the value rows v_j, j ∈ S (the softmax itself is untouched, so nothing renormalises).
 * The hook `lm.blocks.{l}.attn.v` replaces v by v ⊙ keep before v enters the KV cache, so
 * every later decoding step sees the ablated values too; new tokens are never ablated
 * (the keys are prompt positions). With grouped-query attention a KV head serves several
 * query heads, so `heads` must name whole groups.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';
import type { HookFn, NameFilter } from '../hooks/hooks.ts';
import { actName } from '../hooks/names.ts';
import type { LmConfig } from '../io/config.ts';
import { mul } from '../ops/elementwise.ts';

export interface Ablation {
  /** Key positions whose attention weights are zeroed. */
  keys: number[];
  /** Decoder layers. */
  layers: number[];
  /** Query heads (default all). */
  heads?: number[] | null;
}

/** `--layers all | 0-31 | 3,5,9` → decoder layers, checked against the model. */
export function parseLayers(spec: string, L: number, flag = '--layers'): number[] {
  if (spec.trim() === 'all') return Array.from({ length: L }, (_, l) => l);
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UserError(`${flag} ${spec}: "${part}" is not a layer or a range a-b (or "all")`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b >= L) throw new UserError(`${flag} ${spec}: layers must run forwards within 0..${L - 1}`);
    for (let l = a; l <= b; l++) out.add(l);
  }
  return [...out].sort((x, y) => x - y);
}

/** The KV heads an ablation touches: all, or the groups of the named query heads (UserError for part of a group). */
export function kvHeads(cfg: LmConfig, heads: number[] | null | undefined): number[] {
  const H = cfg.num_attention_heads;
  const Hkv = cfg.num_key_value_heads;
  if (!heads) return Array.from({ length: Hkv }, (_, h) => h);
  const group = H / Hkv;
  for (const h of heads) if (!Number.isInteger(h) || h < 0 || h >= H) throw new UserError(`--heads: head ${h} is outside 0..${H - 1}`);
  const kv = [...new Set(heads.map((h) => Math.floor(h / group)))];
  for (const k of kv) {
    for (let h = k * group; h < (k + 1) * group; h++) {
      if (!heads.includes(h)) throw new UserError(`--heads: with grouped-query attention (${group} query heads per KV head) name whole groups; head ${h} shares KV head ${k}`);
    }
  }
  return kv;
}

/** Hooks that apply `a` to a run over a prompt of `seq` positions (prefill and the decode steps after it). */
export function ablationHooks(gpu: Gpu, cfg: LmConfig, seq: number, a: Ablation): { hooks: [NameFilter, HookFn][]; release: () => void } {
  const width = cfg.num_key_value_heads * cfg.head_dim;
  const keep = new Float32Array(seq * width).fill(1);
  for (const j of a.keys) {
    if (j >= seq) throw new UserError(`ablation key position ${j} is past the sequence (0..${seq - 1})`);
    for (const h of kvHeads(cfg, a.heads)) keep.fill(0, j * width + h * cfg.head_dim, j * width + (h + 1) * cfg.head_dim);
  }
  const mask = gpu.upload(keep, [seq, cfg.num_key_value_heads, cfg.head_dim], 'ablation.keep');
  const names = a.layers.map((l) => actName('attn.v', l));
  const hook: HookFn = (v: Tensor) => {
    if (v.shape[0] !== seq) return; // a decoding step: its one new position is never ablated
    const out = mul(gpu, v, mask, { name: v.name });
    gpu.release(v); // the hook owns the tensor it replaces
    return out;
  };
  return { hooks: [[names, hook]], release: () => gpu.release(mask) };
}
