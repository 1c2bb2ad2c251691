/**
 * Every tensor a checkpoint of a given config must hold, with its shape, under the
 * canonical names (the module tree of HF's modeling code as the published checkpoints
 * store it), and the comparison of that list with what a checkpoint holds in whichever
 * layout of `layouts.ts` explains its names best.
 *
 * Sources: modeling_llava.py / modeling_clip.py / modeling_llama.py (names checked
 * against the real llava-1.5-7b-hf index, test/fixtures/), modeling_instructblip.py
 * and its conversion script. InstructBLIP's vision attention is one fused `qkv`
 * Linear without bias plus separate `q_bias` / `v_bias` parameters in the original
 * EVA code; HF stores them concatenated as `qkv.bias` = [q_bias, 0, v_bias].
 */
import type { ClipVisionConfig, InstructBlipConfig, LlamaConfig, LlavaConfig, ModelConfig } from './config.ts';
import { canonicalName, LAYOUTS, storedName, type Layout } from './layouts.ts';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Present in some checkpoints only (e.g. lm_head when embeddings are tied). */
  optional?: boolean;
}

/** Non-persistent buffers that older exports saved; ignored when present. */
const IGNORED = [/\.embeddings\.position_ids$/, /\.rotary_emb\.inv_freq$/];

function linear(out: ExpectedTensor[], prefix: string, outF: number, inF: number, bias: boolean): void {
  out.push({ name: `${prefix}.weight`, shape: [outF, inF] });
  if (bias) out.push({ name: `${prefix}.bias`, shape: [outF] });
}

function layerNorm(out: ExpectedTensor[], prefix: string, size: number): void {
  out.push({ name: `${prefix}.weight`, shape: [size] }, { name: `${prefix}.bias`, shape: [size] });
}

/** CLIPVisionModel under `prefix` (e.g. `vision_tower.vision_model`). */
function clipVision(out: ExpectedTensor[], prefix: string, c: ClipVisionConfig): void {
  const h = c.hidden_size;
  const positions = (c.image_size / c.patch_size) ** 2 + 1;
  out.push(
    { name: `${prefix}.embeddings.class_embedding`, shape: [h] },
    { name: `${prefix}.embeddings.patch_embedding.weight`, shape: [h, c.num_channels, c.patch_size, c.patch_size] },
    { name: `${prefix}.embeddings.position_embedding.weight`, shape: [positions, h] },
  );
  layerNorm(out, `${prefix}.pre_layrnorm`, h); // sic: HF's spelling
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${prefix}.encoder.layers.${i}`;
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(out, `${l}.self_attn.${p}`, h, h, true);
    layerNorm(out, `${l}.layer_norm1`, h);
    linear(out, `${l}.mlp.fc1`, c.intermediate_size, h, true);
    linear(out, `${l}.mlp.fc2`, h, c.intermediate_size, true);
    layerNorm(out, `${l}.layer_norm2`, h);
  }
  layerNorm(out, `${prefix}.post_layernorm`, h);
}

/** LlamaForCausalLM under `prefix` (e.g. `language_model`). */
function llama(out: ExpectedTensor[], prefix: string, c: LlamaConfig): void {
  const h = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  out.push({ name: `${prefix}.model.embed_tokens.weight`, shape: [c.vocab_size, h] });
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${prefix}.model.layers.${i}`;
    out.push({ name: `${l}.input_layernorm.weight`, shape: [h] });
    linear(out, `${l}.self_attn.q_proj`, q, h, c.attention_bias);
    linear(out, `${l}.self_attn.k_proj`, kv, h, c.attention_bias);
    linear(out, `${l}.self_attn.v_proj`, kv, h, c.attention_bias);
    linear(out, `${l}.self_attn.o_proj`, h, q, c.attention_bias);
    out.push({ name: `${l}.post_attention_layernorm.weight`, shape: [h] });
    linear(out, `${l}.mlp.gate_proj`, c.intermediate_size, h, c.mlp_bias);
    linear(out, `${l}.mlp.up_proj`, c.intermediate_size, h, c.mlp_bias);
    linear(out, `${l}.mlp.down_proj`, h, c.intermediate_size, c.mlp_bias);
  }
  out.push({ name: `${prefix}.model.norm.weight`, shape: [h] });
  out.push({ name: `${prefix}.lm_head.weight`, shape: [c.vocab_size, h], optional: c.tie_word_embeddings });
}

function llava(c: LlavaConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  clipVision(out, 'vision_tower.vision_model', c.vision_config);
  const layers = Array.isArray(c.vision_feature_layer) ? c.vision_feature_layer.length : 1;
  const t = c.text_config.hidden_size;
  linear(out, 'multi_modal_projector.linear_1', t, c.vision_config.hidden_size * layers, c.multimodal_projector_bias);
  linear(out, 'multi_modal_projector.linear_2', t, t, c.multimodal_projector_bias);
  llama(out, 'language_model', c.text_config);
  return out;
}

function instructblip(c: InstructBlipConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const v = c.vision_config;
  const h = v.hidden_size;
  out.push(
    { name: 'vision_model.embeddings.class_embedding', shape: [1, 1, h] },
    { name: 'vision_model.embeddings.patch_embedding.weight', shape: [h, 3, v.patch_size, v.patch_size] },
    { name: 'vision_model.embeddings.patch_embedding.bias', shape: [h] },
    { name: 'vision_model.embeddings.position_embedding', shape: [1, (v.image_size / v.patch_size) ** 2 + 1, h] },
  );
  for (let i = 0; i < v.num_hidden_layers; i++) {
    const l = `vision_model.encoder.layers.${i}`;
    linear(out, `${l}.self_attn.qkv`, 3 * h, h, v.qkv_bias);
    linear(out, `${l}.self_attn.projection`, h, h, true);
    layerNorm(out, `${l}.layer_norm1`, h);
    linear(out, `${l}.mlp.fc1`, v.intermediate_size, h, true);
    linear(out, `${l}.mlp.fc2`, h, v.intermediate_size, true);
    layerNorm(out, `${l}.layer_norm2`, h);
  }
  layerNorm(out, 'vision_model.post_layernorm', h);

  const q = c.qformer_config;
  const qh = q.hidden_size;
  out.push({ name: 'query_tokens', shape: [1, c.num_query_tokens, qh] });
  out.push(
    { name: 'qformer.embeddings.word_embeddings.weight', shape: [q.vocab_size, qh] },
    { name: 'qformer.embeddings.position_embeddings.weight', shape: [q.max_position_embeddings, qh] },
  );
  layerNorm(out, 'qformer.embeddings.layernorm', qh);
  const attention = (prefix: string, kvIn: number) => {
    linear(out, `${prefix}.attention.query`, qh, qh, true);
    linear(out, `${prefix}.attention.key`, qh, kvIn, true);
    linear(out, `${prefix}.attention.value`, qh, kvIn, true);
    linear(out, `${prefix}.output.dense`, qh, qh, true);
    layerNorm(out, `${prefix}.output.LayerNorm`, qh);
  };
  for (let i = 0; i < q.num_hidden_layers; i++) {
    const l = `qformer.encoder.layer.${i}`;
    attention(`${l}.attention`, qh);
    if (i % q.cross_attention_frequency === 0) attention(`${l}.crossattention`, q.encoder_hidden_size);
    // text tokens (the instruction) and query tokens have separate feed-forwards
    for (const [inter, output] of [['intermediate', 'output'], ['intermediate_query', 'output_query']]) {
      linear(out, `${l}.${inter}.dense`, q.intermediate_size, qh, true);
      linear(out, `${l}.${output}.dense`, qh, q.intermediate_size, true);
      layerNorm(out, `${l}.${output}.LayerNorm`, qh);
    }
  }
  linear(out, 'language_projection', c.text_config.hidden_size, qh, true);
  llama(out, 'language_model', c.text_config);
  return out;
}

/** The full list of tensors a checkpoint for `config` holds, in module order. */
export function expectedTensors(config: ModelConfig): ExpectedTensor[] {
  return config.model_type === 'llava' ? llava(config) : instructblip(config);
}

export interface TensorMatch {
  /** The layout the names were read in. */
  layout: Layout;
  /** How many stored names `layout` maps onto an expected tensor. */
  mapped: number;
  /** Stored name → canonical name, for every stored name a rule of `layout` matches. */
  canonical: Map<string, string>;
  /** Checkpoint name (as stored) for each expected name that was found. */
  found: Map<string, string>;
  missing: ExpectedTensor[];
  /** Stored names no rule of `layout` matches (the folder is in no known layout). */
  unmatched: string[];
  /** Stored names in `layout` that this config does not expect, or a second copy of one. */
  unexpected: string[];
  wrongShape: { name: string; expected: number[]; found: number[] }[];
  /** Buffers that are present but not needed (see IGNORED). */
  ignored: string[];
}

type TensorTable = ReadonlyMap<string, { shape: readonly number[] }>;

/** Compares the expected list with a checkpoint's tensor table read in `layout`. */
export function matchTensors(expected: readonly ExpectedTensor[], actual: TensorTable, layout: Layout): TensorMatch {
  const byName = new Map(expected.map((e) => [e.name, e]));
  const canonical = new Map<string, string>();
  const found = new Map<string, string>();
  const unmatched: string[] = [];
  const unexpected: string[] = [];
  const ignored: string[] = [];
  const wrongShape: TensorMatch['wrongShape'] = [];
  for (const [stored, { shape }] of actual) {
    if (IGNORED.some((re) => re.test(stored))) {
      ignored.push(stored);
      continue;
    }
    const name = canonicalName(layout, stored);
    if (name === null) {
      unmatched.push(stored);
      continue;
    }
    canonical.set(stored, name);
    const e = byName.get(name);
    if (!e || found.has(name)) {
      unexpected.push(stored);
      continue;
    }
    found.set(name, stored);
    if (shape.length !== e.shape.length || shape.some((d, i) => d !== e.shape[i])) {
      wrongShape.push({ name: stored, expected: e.shape, found: [...shape] });
    }
  }
  const missing = expected.filter((e) => !e.optional && !found.has(e.name));
  return { layout, mapped: found.size, canonical, found, missing, unmatched, unexpected, wrongShape, ignored };
}

/**
 * Reads the checkpoint in each of its family's layouts and keeps the one that maps the
 * most stored names onto expected tensors (the first listed on a tie).
 */
export function matchCheckpoint(config: ModelConfig, actual: TensorTable): TensorMatch {
  const expected = expectedTensors(config);
  let best: TensorMatch | undefined;
  for (const layout of LAYOUTS[config.model_type]) {
    const m = matchTensors(expected, actual, layout);
    if (!best || m.mapped > best.mapped) best = m;
  }
  return best!;
}

function firstFew(items: string[], n = 5): string {
  const head = items.slice(0, n).join(', ');
  return items.length > n ? `${head}, … (${items.length - n} more)` : head;
}

/** One line per kind of problem, or [] when the checkpoint matches; names as the folder stores them. */
export function describeMatch(m: TensorMatch, expectedCount: number, foundCount: number): string[] {
  const lines: string[] = [];
  if (m.unmatched.length) {
    lines.push(
      `${m.unmatched.length} of ${foundCount} tensor names fit no known layout; the closest is "${m.layout.id}" (${m.layout.writtenBy}), ` +
        `which maps ${m.mapped} of ${expectedCount}; first unmatched: ${firstFew(m.unmatched)}`,
    );
  }
  if (m.missing.length) {
    // named as the folder's layout would store them
    const names = m.missing.map((e) => `${storedName(m.layout, e.name)} [${e.shape.join(', ')}]`);
    lines.push(`${m.missing.length} of ${expectedCount} expected tensors are missing: ${firstFew(names)}`);
  }
  if (m.unexpected.length) {
    lines.push(`${m.unexpected.length} of ${foundCount} tensors in the checkpoint are unexpected for this config: ${firstFew(m.unexpected)}`);
  }
  if (m.wrongShape.length) {
    lines.push(
      `${m.wrongShape.length} tensors have the wrong shape for this config: ${firstFew(
        m.wrongShape.map((w) => `${w.name} is [${w.found.join(', ')}], expected [${w.expected.join(', ')}]`),
      )}`,
    );
  }
  return lines;
}
