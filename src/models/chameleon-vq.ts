/**
 * Chameleon's VQ image tokenizer, the encoder half — mirrors HF ChameleonVQVAE.encode
 * (modeling_chameleon.py): `encoder` {conv_in, down[i] {block[j] (ResNet), attn[j] where
 * the level's resolution is in attn_resolutions, downsample (all levels but the last)},
 * mid {block_1, attn_1, block_2}, norm_out, conv_out} → quant_conv → the quantiser's
 * nearest codeword (L2) → the code's BPE token id (vocabulary_map's IMGIMG entries).
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/chameleon/modeling_chameleon.py
 *
 * Activations stay channels last, [H, W, C] (the rows of every matmul): convolutions are
 * im2col + matmul (ops/conv2d.ts), GroupNorm(32, eps 1e-6) with its SiLU fused
 * (ops/group-norm.ts), the downsample a 3×3 stride-2 conv after F.pad (0, 1, 0, 1) — one
 * zero column right and one zero row below. The attention block is one head over every
 * position with head dim = channels: the fused kernel (ops/attention.ts) up to MAX_HEAD_DIM
 * channels, which never holds the [h·w, h·w] scores; wider heads (the 7B's mid block: 512
 * channels over 32×32 positions, 4 MiB of scores) materialise them — matmul, softmax, matmul.
 * Hook points:
 *   vq.latent          [h, w, embed_dim]  quant_conv's output, the quantiser's input
 *   vq.image_token_ids [h·w]              the BPE ids the image becomes (i32, row-major)
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { HookPoints } from '../hooks/hooks.ts';
import type { ChameleonVqConfig } from '../io/config-chameleon.ts';
import type { ExpectedTensor } from '../io/expected-tensors.ts';
import { attention, MAX_HEAD_DIM } from '../ops/attention.ts';
import { codebookArgmin } from '../ops/codebook-argmin.ts';
import { view } from '../ops/common.ts';
import { conv2d, type Padding } from '../ops/conv2d.ts';
import { add } from '../ops/elementwise.ts';
import { groupNorm } from '../ops/group-norm.ts';
import { linear } from '../ops/linear.ts';
import { softmax } from '../ops/softmax.ts';
import type { Weights } from './weights.ts';

const GROUPS = 32;
const EPS = 1e-6;
const SAME: Padding = [1, 1, 1, 1];
/** F.pad(pad=(0, 1, 0, 1)): [top, left, bottom, right]. */
const DOWN: Padding = [0, 0, 1, 1];

class Conv2d {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
    readonly stride = 1,
    readonly pad: Padding = [0, 0, 0, 0],
  ) {}

  static async load(w: Weights, stride = 1, pad: Padding = [0, 0, 0, 0]): Promise<Conv2d> {
    return new Conv2d(await w.get('weight'), await w.get('bias'), stride, pad);
  }

  forward(gpu: Gpu, x: Tensor, name?: string): Tensor {
    return conv2d(gpu, x, this.weight, { bias: this.bias, stride: this.stride, pad: this.pad, name });
  }
}

class GroupNorm {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(w: Weights): Promise<GroupNorm> {
    return new GroupNorm(await w.get('weight'), await w.get('bias'));
  }

  forward(gpu: Gpu, x: Tensor, silu: boolean): Tensor {
    return groupNorm(gpu, x, GROUPS, this.weight, this.bias, EPS, { silu });
  }
}

/** x + f(x) with x kept (the residual is the caller's). */
function plus(gpu: Gpu, residual: Tensor, h: Tensor): Tensor {
  const out = add(gpu, residual, h);
  gpu.release(h);
  return out;
}

class ResnetBlock {
  constructor(
    readonly norm1: GroupNorm,
    readonly conv1: Conv2d,
    readonly norm2: GroupNorm,
    readonly conv2: Conv2d,
    readonly ninShortcut: Conv2d | null,
  ) {}

  static async load(w: Weights, cin: number, cout: number): Promise<ResnetBlock> {
    return new ResnetBlock(
      await GroupNorm.load(w.pp('norm1')),
      await Conv2d.load(w.pp('conv1'), 1, SAME),
      await GroupNorm.load(w.pp('norm2')),
      await Conv2d.load(w.pp('conv2'), 1, SAME),
      cin !== cout ? await Conv2d.load(w.pp('nin_shortcut')) : null,
    );
  }

  forward(gpu: Gpu, x: Tensor): Tensor {
    const a = this.norm1.forward(gpu, x, true);
    const b = this.conv1.forward(gpu, a);
    const c = this.norm2.forward(gpu, b, true);
    const h = this.conv2.forward(gpu, c);
    gpu.release(a, b, c);
    if (!this.ninShortcut) return plus(gpu, x, h);
    const r = this.ninShortcut.forward(gpu, x);
    const out = plus(gpu, r, h);
    gpu.release(r);
    return out;
  }
}

class AttnBlock {
  constructor(
    readonly norm: GroupNorm,
    readonly q: Conv2d,
    readonly k: Conv2d,
    readonly v: Conv2d,
    readonly projOut: Conv2d,
  ) {}

  static async load(w: Weights): Promise<AttnBlock> {
    const c = (n: string) => Conv2d.load(w.pp(n));
    // v's weight in f32: the wide path multiplies it as the left operand (activations are f32)
    const v = new Conv2d(await w.pp('v').getF32('weight'), await w.pp('v').get('bias'));
    return new AttnBlock(await GroupNorm.load(w.pp('norm')), await c('q'), await c('k'), v, await c('proj_out'));
  }

  /** softmax(q kᵀ / √C) v over all h·w positions, one head of C channels; x + proj_out(…). */
  forward(gpu: Gpu, x: Tensor): Tensor {
    const [H, W, C] = x.shape;
    const n = this.norm.forward(gpu, x, false);
    const q = this.q.forward(gpu, n);
    const k = this.k.forward(gpu, n);
    const z = C <= MAX_HEAD_DIM ? this.fused(gpu, n, q, k) : this.wide(gpu, n, q, k);
    const h = this.projOut.forward(gpu, view(z, [H, W, C]));
    gpu.release(n, q, k, z);
    return plus(gpu, x, h);
  }

  private fused(gpu: Gpu, n: Tensor, q: Tensor, k: Tensor): Tensor {
    const [H, W, C] = n.shape;
    const hw = [H * W, 1, C];
    const v = this.v.forward(gpu, n);
    const z = attention(gpu, view(q, hw), view(k, hw), view(v, hw), { causal: false });
    gpu.release(v);
    return z;
  }

  /**
   * The scores [h·w, h·w] as HF computes them (bmm, × C^−½, softmax), then P·v. The matmul
   * takes its right operand transposed, so vᵀ = W_v·nᵀ comes straight from it, without v's
   * bias; that bias is added to P·v instead, the same since every row of P sums to 1.
   */
  private wide(gpu: Gpu, n: Tensor, q: Tensor, k: Tensor): Tensor {
    const [H, W, C] = n.shape;
    const rows = (t: Tensor) => view(t, [H * W, C]);
    const s = linear(gpu, rows(q), rows(k), { name: 'vq.attn_scores' });
    const p = softmax(gpu, s, { scale: C ** -0.5 });
    const vt = linear(gpu, view(this.v.weight, [C, C]), rows(n), { name: 'vq.attn_vt' });
    const z = linear(gpu, p, vt, { bias: this.v.bias, name: 'vq.attn_out' });
    gpu.release(s, p, vt);
    return z;
  }
}

interface Level {
  blocks: ResnetBlock[];
  attns: AttnBlock[];
  downsample: Conv2d | null;
}

/** Channels in and out of each level (HF's in_channel_multiplier = (1,) + channel_multiplier). */
function levelChannels(c: ChameleonVqConfig): { cin: number; cout: number; res: number }[] {
  const mult = [1, ...c.channel_multiplier];
  return c.channel_multiplier.map((m, i) => ({ cin: c.base_channels * mult[i], cout: c.base_channels * m, res: c.resolution >> i }));
}

export class ChameleonVQVAEEncoder {
  constructor(
    readonly cfg: ChameleonVqConfig,
    readonly convIn: Conv2d,
    readonly down: Level[],
    readonly mid: { block1: ResnetBlock; attn1: AttnBlock | null; block2: ResnetBlock },
    readonly normOut: GroupNorm,
    readonly convOut: Conv2d,
  ) {}

  static async load(w: Weights, c: ChameleonVqConfig): Promise<ChameleonVQVAEEncoder> {
    const down: Level[] = [];
    const levels = levelChannels(c);
    for (const [i, { cin, cout, res }] of levels.entries()) {
      const lw = w.pp(`down.${i}`);
      const blocks: ResnetBlock[] = [];
      const attns: AttnBlock[] = [];
      for (let j = 0; j < c.num_res_blocks; j++) {
        blocks.push(await ResnetBlock.load(lw.pp(`block.${j}`), j === 0 ? cin : cout, cout));
        if (hasAttn(c, res)) attns.push(await AttnBlock.load(lw.pp(`attn.${j}`)));
      }
      const downsample = i < levels.length - 1 ? await Conv2d.load(lw.pp('downsample.conv'), 2, DOWN) : null;
      down.push({ blocks, attns, downsample });
    }
    const top = levels[levels.length - 1].cout;
    const mid = {
      block1: await ResnetBlock.load(w.pp('mid.block_1'), top, top),
      attn1: c.attn_type === 'vanilla' ? await AttnBlock.load(w.pp('mid.attn_1')) : null,
      block2: await ResnetBlock.load(w.pp('mid.block_2'), top, top),
    };
    return new ChameleonVQVAEEncoder(c, await Conv2d.load(w.pp('conv_in'), 1, SAME), down, mid, await GroupNorm.load(w.pp('norm_out')), await Conv2d.load(w.pp('conv_out'), 1, SAME));
  }

  /** pixels [H, W, 3] → latent [H/f, W/f, latent_channels (×2 with double_latent)]. */
  forward(gpu: Gpu, pixels: Tensor): Tensor {
    let h = this.convIn.forward(gpu, pixels);
    const step = (next: Tensor) => {
      gpu.release(h);
      h = next;
    };
    for (const level of this.down) {
      level.blocks.forEach((b, j) => {
        step(b.forward(gpu, h));
        if (level.attns.length) step(level.attns[j].forward(gpu, h));
      });
      if (level.downsample) step(level.downsample.forward(gpu, h));
    }
    step(this.mid.block1.forward(gpu, h));
    if (this.mid.attn1) step(this.mid.attn1.forward(gpu, h));
    step(this.mid.block2.forward(gpu, h));
    step(this.normOut.forward(gpu, h, true));
    step(this.convOut.forward(gpu, h));
    return h;
  }
}

function hasAttn(c: ChameleonVqConfig, res: number): boolean {
  return c.attn_type === 'vanilla' && c.attn_resolutions.includes(res);
}

/** The VQ tokenizer of ChameleonModel (`model.vqmodel`): pixels → BPE ids of the image's codes. */
export class ChameleonVQVAE {
  constructor(
    readonly cfg: ChameleonVqConfig,
    readonly hooks: HookPoints,
    readonly encoder: ChameleonVQVAEEncoder,
    readonly quantConv: Conv2d,
    readonly codebook: Tensor,
    /** BPE id of each code [num_embeddings] (i32). */
    readonly codeIds: Tensor,
  ) {
    hooks.declare('vq.latent', '[h, w, embed_dim]');
    hooks.declare('vq.image_token_ids', '[h * w] (i32)');
  }

  static async load(w: Weights, c: ChameleonVqConfig, codeIds: readonly number[], hooks: HookPoints): Promise<ChameleonVQVAE> {
    const ids = w.gpu.upload(Int32Array.from(codeIds), [codeIds.length], 'vq.code_ids', 'i32');
    return new ChameleonVQVAE(c, hooks, await ChameleonVQVAEEncoder.load(w.pp('encoder'), c), await Conv2d.load(w.pp('quant_conv')), await w.get('quantize.embedding.weight'), ids);
  }

  /** pixel_values [3, H, W] (host, CHW as the processor gives them) → the image's BPE ids [h·w] (i32). */
  imageTokenIds(gpu: Gpu, pixels: { data: Float32Array; shape: readonly number[] }): Tensor {
    const [C, H, W] = pixels.shape;
    const hwc = new Float32Array(C * H * W);
    for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) hwc[i * C + c] = pixels.data[c * H * W + i];
    const px = gpu.upload(hwc, [H, W, C], 'pixel_values');
    const latent = this.encoder.forward(gpu, px);
    const z = this.hooks.run('vq.latent', this.quantConv.forward(gpu, latent, 'vq.latent'));
    const [h, w, d] = z.shape;
    const ids = this.hooks.run('vq.image_token_ids', codebookArgmin(gpu, view(z, [h * w, d]), this.codebook, { map: this.codeIds, name: 'vq.image_token_ids' }));
    gpu.release(px, latent, z);
    return ids;
  }
}

/** Every tensor of `model.vqmodel` (encoder, quant_conv, the codebook, post_quant_conv), all optional: some conversions ship only the LM. */
export function chameleonVqTensors(out: ExpectedTensor[], prefix: string, c: ChameleonVqConfig): void {
  const push = (name: string, shape: number[]) => out.push({ name: `${prefix}.${name}`, shape, optional: true, generated: true });
  const conv = (name: string, cout: number, cin: number, k: number) => {
    push(`${name}.weight`, [cout, cin, k, k]);
    push(`${name}.bias`, [cout]);
  };
  const norm = (name: string, ch: number) => {
    push(`${name}.weight`, [ch]);
    push(`${name}.bias`, [ch]);
  };
  const resnet = (name: string, cin: number, cout: number) => {
    norm(`${name}.norm1`, cin);
    conv(`${name}.conv1`, cout, cin, 3);
    norm(`${name}.norm2`, cout);
    conv(`${name}.conv2`, cout, cout, 3);
    if (cin !== cout) conv(`${name}.nin_shortcut`, cout, cin, 1);
  };
  const attn = (name: string, ch: number) => {
    norm(`${name}.norm`, ch);
    for (const p of ['q', 'k', 'v', 'proj_out']) conv(`${name}.${p}`, ch, ch, 1);
  };
  const levels = levelChannels(c);
  conv('encoder.conv_in', c.base_channels, c.in_channels, 3);
  levels.forEach(({ cin, cout, res }, i) => {
    for (let j = 0; j < c.num_res_blocks; j++) {
      resnet(`encoder.down.${i}.block.${j}`, j === 0 ? cin : cout, cout);
      if (hasAttn(c, res)) attn(`encoder.down.${i}.attn.${j}`, cout);
    }
    if (i < levels.length - 1) conv(`encoder.down.${i}.downsample.conv`, cout, cout, 3);
  });
  const top = levels[levels.length - 1].cout;
  resnet('encoder.mid.block_1', top, top);
  if (c.attn_type === 'vanilla') attn('encoder.mid.attn_1', top);
  resnet('encoder.mid.block_2', top, top);
  norm('encoder.norm_out', top);
  conv('encoder.conv_out', c.double_latent ? 2 * c.latent_channels : c.latent_channels, top, 3);
  conv('quant_conv', c.embed_dim, c.latent_channels, 1);
  push('quantize.embedding.weight', [c.num_embeddings, c.embed_dim]);
  conv('post_quant_conv', c.latent_channels, c.embed_dim, 1);
}

/** The names that must all be present for image input (the encoder's path to the codes). */
export const VQ_REQUIRED = ['encoder.conv_in.weight', 'quant_conv.weight', 'quantize.embedding.weight'];
