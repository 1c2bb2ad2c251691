/**
 * A Chameleon checkpoint with a gate set by hand (the narrow-gate study's end-of-image
 * token, arXiv 2412.06646): make-tiny's chameleon, whose decoder weights are edited so
 * that in every layer every text query attends (almost) only to `<eoss>`, while `<eoss>`
 * attends evenly to what precedes it (the image). So everything the text learns of the
 * image passes through that one position — a known answer for the gate measures.
 *
 * How (three residual dimensions reserved, IMAGE_DIM, GATE_DIM and TEXT_DIM):
 * - embeddings (MARK = 4 × their RMS): GATE_DIM = MARK on `<eoss>`'s row and 0 elsewhere; TEXT_DIM = MARK on every
 *   text token's row (not the image tokens', not `<eoss>`'s) and 0 elsewhere; IMAGE_DIM =
 *   MARK on the image tokens' rows and 0 elsewhere;
 * - no layer writes those dimensions (their rows of every o_proj and down_proj are 0), so
 *   they keep their values at every layer; input_layernorm keeps them (weight 1);
 * - k_proj reads GATE_DIM and IMAGE_DIM (with the opposite sign), q_proj only TEXT_DIM, into the pair (Dh/2 − 1, Dh − 1) of
 *   each head — the slowest rotary frequency (θ^(−(Dh−2)/Dh) per position), so RoPE turns
 *   them by < 0.01 rad over the sequence — with opposite signs, so the per-head LayerNorm
 *   (mean over head_dim) keeps them: a key is ±√(Dh/2) on that pair at `<eoss>`, ∓√(Dh/2)
 *   at an image token and 0 everywhere else (LayerNorm of 0 is 0; bias 0), a text query
 *   ±Q_SCALE·√(Dh/2).
 * - Score of a text query on `<eoss>`: Q_SCALE·(Dh/2)·2 / √Dh = Q_SCALE·√Dh; on an image
 *   token −Q_SCALE·√Dh; on every other key 0. With Q_SCALE = 4, Dh = 16: ±16, so `<eoss>`
 *   gets e^16 / (e^16 + S) ≥ 0.99999 of the weight for any sequence S < 100 keys long — and
 *   with `<eoss>` knocked out, an image token gets ≤ e^−16 of the text's weight: the text
 *   cannot read the image past the gate (the narrow-gate ablation drops to chance). Image
 *   tokens and `<eoss>` have q = 0: uniform over what they see.
 * - every o_proj × O_GAIN: what `<eoss>` gathers from the image (layer 0) and passes on to
 *   the text (later layers) outweighs the rest of the residual stream, so the answer of
 *   this random model depends on the image (with make-tiny's scale it is the same for every
 *   image).
 * The other weights stay make-tiny's random ones: the gate carries real content.
 *
 *   node src/cli/run-ts.mjs weights-tools/constructed-gate.ts --out DIR [--seed N]
 */
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { SafetensorsFile } from '../src/io/safetensors.ts';
import { openFileSource } from '../src/io/source-node.ts';
import { writeSafetensors } from '../src/io/safetensors-write.ts';
import { makeTiny } from './make-tiny.ts';

const Q_SCALE = 4;
const O_GAIN = 10;

export async function makeConstructedGate(out: string, seed = 3): Promise<void> {
  await makeTiny({ arch: 'chameleon', out, seed, dtype: 'f32' });
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  const d: number = cfg.hidden_size;
  const H: number = cfg.num_attention_heads;
  const Dh = d / H;
  const IMAGE_DIM = d - 3;
  const GATE_DIM = d - 2;
  const TEXT_DIM = d - 1;
  const vocab = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as { added_tokens: { id: number; content: string }[] };
  const eoss = vocab.added_tokens.find((t) => t.content === '<eoss>')!.id;
  const image = new Set(Object.entries(cfg.vocabulary_map as Record<string, number>).filter(([k]) => k.startsWith('IMGIMG') || k === '<image>').map(([, v]) => v));

  const path = join(out, 'model.safetensors');
  const file = await SafetensorsFile.open(await openFileSource(path));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  try {
    for (const [name, info] of file.tensors) {
      const b = await file.readTensor(name);
      tensors.set(name, { shape: info.shape, data: new Float32Array(b.slice().buffer) });
    }
  } finally {
    await file.close();
  }
  const t = (name: string) => tensors.get(name)!.data;

  const emb = t('model.embed_tokens.weight');
  // the marks: 4 × the embeddings' RMS, so a normalised row keeps its content (a mark of
  // 8 against make-tiny's 0.02 left every token of a kind the same after input_layernorm)
  const MARK = 4 * Math.sqrt(emb.reduce((a, v) => a + v * v, 0) / emb.length);
  for (let id = 0; id < emb.length / d; id++) {
    emb[id * d + GATE_DIM] = id === eoss ? MARK : 0;
    emb[id * d + TEXT_DIM] = id !== eoss && !image.has(id) ? MARK : 0;
    emb[id * d + IMAGE_DIM] = image.has(id) ? MARK : 0;
  }
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    t(p + 'input_layernorm.weight').fill(1, IMAGE_DIM, d);
    const reads = (w: Float32Array, dims: [number, number][]) => {
      w.fill(0);
      for (let h = 0; h < H; h++) {
        for (const [dim, sign] of dims) {
          w[(h * Dh + Dh / 2 - 1) * d + dim] = sign;
          w[(h * Dh + Dh - 1) * d + dim] = -sign;
        }
      }
    };
    reads(t(p + 'self_attn.q_proj.weight'), [[TEXT_DIM, 1]]);
    reads(t(p + 'self_attn.k_proj.weight'), [[GATE_DIM, 1], [IMAGE_DIM, -1]]);
    // values read no mark: what <eoss> passes on is the image, not that it saw image tokens
    const v = t(p + 'self_attn.v_proj.weight');
    for (let r = 0; r < v.length / d; r++) v.fill(0, r * d + IMAGE_DIM, r * d + d);
    const o = t(p + 'self_attn.o_proj.weight');
    for (let i = 0; i < o.length; i++) o[i] *= O_GAIN;
    t(p + 'self_attn.q_norm.weight').fill(Q_SCALE);
    t(p + 'self_attn.q_norm.bias').fill(0);
    t(p + 'self_attn.k_norm.weight').fill(1);
    t(p + 'self_attn.k_norm.bias').fill(0);
    const inner = (name: string) => tensors.get(name)!.shape[1];
    for (const w of ['self_attn.o_proj.weight', 'mlp.down_proj.weight']) {
      const n = inner(p + w);
      t(p + w).fill(0, IMAGE_DIM * n, d * n); // the three reserved rows, the last three
    }
  }
  const tmp = `${path}.tmp`;
  await writeSafetensors(tmp, [...tensors].map(([name, v]) => ({ name, dtype: 'F32' as const, shape: v.shape })), (s) => new Uint8Array(tensors.get(s.name)!.data.buffer));
  renameSync(tmp, path);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const o = new Command().requiredOption('--out <dir>').option('--seed <n>', 'make-tiny seed', '3').parse().opts<{ out: string; seed: string }>();
  await makeConstructedGate(o.out, Number(o.seed));
  console.log(`wrote ${o.out}: chameleon with a hand-set gate at <eoss>`);
}
