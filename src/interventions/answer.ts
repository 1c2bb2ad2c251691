/**
 * The quantity every intervention reports: the model's output at the last position.
 * The last row's logits over the whole vocabulary are read back (one row: 128 KB for
 * 32064 ids) and the softmax is taken on the host in f64, so a probability of 1e-9 is
 * still a number and `(p_knock − p_base) / p_base` keeps its digits.
 */
import type { Gpu } from '../gpu/context.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { DecoderLm } from '../models/vlm.ts';

/** Logits [vocab] of the last row of final-normed hidden states [S, d]; releases nothing. */
export async function lastLogits(gpu: Gpu, lm: DecoderLm, hidden: Tensor): Promise<Float32Array> {
  const [S, d] = hidden.shape;
  const last = gpu.tensor([1, d], 'f32', 'last_hidden');
  gpu.copy(hidden, last, (S - 1) * d, 0, d);
  const out = new Float32Array(lm.cfg.vocab_size);
  for (const p of lm.logits(gpu, last)) {
    out.set(await gpu.readF32(p.tensor), p.colStart);
    gpu.release(p.tensor);
  }
  gpu.release(last);
  return out;
}

export interface LastOutput {
  logits: Float32Array;
  /** Greedy next token. */
  top: number;
  /** softmax probability of `id`. */
  p(id: number): number;
}

export function lastOutput(logits: Float32Array): LastOutput {
  let top = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[top]) top = i;
  const max = logits[top];
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - max);
  return { logits, top, p: (id) => Math.exp(logits[id] - max) / z };
}

/** Runs `forward` (which returns hidden states), reads the last position's output and releases the hidden states. */
export async function runLast(gpu: Gpu, lm: DecoderLm, forward: () => Tensor): Promise<LastOutput> {
  const h = forward();
  const logits = await lastLogits(gpu, lm, h);
  gpu.release(h);
  return lastOutput(logits);
}
