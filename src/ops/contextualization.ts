/**
 * Contextualization of the image and text token sets of one hidden state (DESIGN.md,
 * "Exact metric definitions" 1–2; paper eq. 1 and its intra-modal version), on the GPU in
 * O((m + n) d) from the sums of unit vectors U_img, U_txt of the two sets:
 *
 *   inter       = (U_img · U_txt) / (m n)          mean cos over image × text pairs
 *   intra_image = (‖U_img‖² − m) / (m (m − 1))     mean cos over pairs i ≠ j of the image set
 *   intra_text  = (‖U_txt‖² − n) / (n (n − 1))     the same over the text set
 *
 *   h [rows, d] f32 (a hidden state, e.g. `lm.blocks.{l}.resid_post`; [1, rows, d] too)
 *   sets: the row indices of each set, uploaded once per input by `contextSets`
 *   out [R, 3] f32 (or [R, 5]: + the counts m, n actually used); this call writes row `row`
 *
 * Rows whose norm is exactly zero have no direction: they are skipped and not counted in
 * m, n (width 5 shows the counts used). A scalar that needs more rows than remain (inter:
 * m or n = 0; intra: m or n < 2) is NaN in `out` — report it as null (`contextScalars`
 * does). The probe records one call per layer into row l of an [L + 1, 3] result and reads
 * that small tensor back once at the end.
 *
 * Kernel: shaders/contextualization.wgsl (stages NORMS → SUMS → SCALARS; see its header).
 * Cost: 2 reads of the (m + n) rows, about 4 (m + n) d FLOPs; a 600 × 4096 input reads
 * ~20 MB. Scratch: (m + n) + 2 · ceil(max(m, n) / 64) · d floats, released after the call.
 */
import type { Gpu } from '../gpu/context.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { isCpuAdapter, requireF32, rowsOf, rowWorkgroup } from './common.ts';

/** Row indices of the two token sets of one input, on the GPU. */
export interface ContextSets {
  /** u32 [m + n]: the image set's row indices, then the text set's. */
  idx: Tensor;
  /** Image-set size (zero rows included). */
  m: number;
  /** Text-set size (zero rows included). */
  n: number;
  /** 1 + the largest index: h must have at least this many rows. */
  rows: number;
}

/** Columns of a contextualization result row: (inter, intra_image, intra_text[, m, n]). */
export type ContextWidth = 3 | 5;

/** Set rows per partial column sum (stage SUMS). */
const CHUNK = 64;
/** Columns per workgroup of stage SUMS. */
const WG_SUM = 64;

/**
 * Uploads the two sets. `image` is a half-open range [start, end) or a list of indices;
 * `text` a list (e.g. every position outside the image span, BOS dropped or not). Indices
 * must be distinct within a set and the sets disjoint (a partition of some of the rows).
 */
export function contextSets(
  gpu: Gpu,
  image: readonly number[] | { start: number; end: number },
  text: readonly number[],
  name = 'context_sets',
): ContextSets {
  const img = Array.isArray(image) ? (image as readonly number[]) : range((image as { start: number; end: number }).start, (image as { start: number; end: number }).end);
  const seen = new Set<number>();
  const check = (what: string, list: readonly number[]) => {
    for (const i of list) {
      if (!(Number.isInteger(i) && i >= 0 && i < 2 ** 31)) throw new GpuError(`contextSets: ${what} index ${i} is not a row index`);
      if (seen.has(i)) throw new GpuError(`contextSets: row ${i} appears twice (the ${what} set repeats it or both sets hold it)`);
      seen.add(i);
    }
  };
  check('image', img);
  check('text', text);
  const all = Uint32Array.from([...img, ...text]);
  const idx = gpu.upload(all.length ? all : new Uint32Array(1), [Math.max(1, all.length)], name, 'u32');
  return { idx, m: img.length, n: text.length, rows: all.length ? Math.max(...all) + 1 : 0 };
}

/** A zeroed result for `rows` calls (e.g. L + 1 hidden states). */
export function contextResult(gpu: Gpu, rows: number, width: ContextWidth = 3, name = 'contextualization'): Tensor {
  return gpu.tensor([rows, width], 'f32', name);
}

/**
 * Records the three scalars of hidden state `h` into row `row` of `out` (allocated [1, 3]
 * when not given) and returns `out`. Nothing is read back.
 */
export function contextualization(gpu: Gpu, h: Tensor, sets: ContextSets, out?: Tensor, row = 0): Tensor {
  requireF32('contextualization', 'h', h);
  const { rows, D: d } = rowsOf('contextualization', h);
  if (sets.rows > rows) throw new GpuError(`contextualization: the sets index row ${sets.rows - 1} but ${h} has ${rows} rows`);
  if (sets.idx.dtype !== 'u32' || sets.idx.numel < sets.m + sets.n) throw new GpuError(`contextualization: sets.idx ${sets.idx} must be u32 with ${sets.m + sets.n} entries`);
  out ??= gpu.tensor([1, 3], 'f32', `contextualization(${h.name})`);
  const width = out.shape[out.shape.length - 1];
  if (out.dtype !== 'f32' || out.shape.length !== 2 || (width !== 3 && width !== 5)) throw new GpuError(`contextualization: out ${out} must be f32 [rows, 3] or [rows, 5]`);
  if (!(Number.isInteger(row) && row >= 0 && row < out.shape[0])) throw new GpuError(`contextualization: row ${row} is outside 0..${out.shape[0] - 1} of ${out}`);

  const { m, n } = sets;
  const total = m + n;
  const chunks = Math.max(1, Math.ceil(Math.max(m, n) / CHUNK));
  const inv = inverseNorms(gpu, h, sets);
  const part = gpu.tensor([2, chunks, d], 'f32', 'contextualization.partial_sums');
  const params = { values: [d, m, n, CHUNK, chunks, row * width, width] };
  const shapes = `d=${d} m=${m} n=${n} row=${row}`;
  gpu.dispatch({
    kernel: 'contextualization.sums',
    pipeline: { shader: 'contextualization.wgsl', defines: { STAGE_SUMS: true }, constants: { WG_SUM } },
    params,
    bindings: [h, sets.idx, inv, part],
    workgroups: [Math.ceil(d / WG_SUM), chunks, 2],
    shapes,
    flops: 2 * total * d,
    bytes: 4 * (total * (d + 2) + 2 * chunks * d),
  });
  gpu.dispatch({
    kernel: 'contextualization.scalars',
    pipeline: { shader: 'contextualization.wgsl', defines: { STAGE_SCALARS: true }, constants: { WG: isCpuAdapter(gpu) ? 32 : 256 } },
    params,
    bindings: [null, null, inv, part, out],
    workgroups: [1],
    shapes,
    flops: 2 * chunks * d + 6 * d,
    bytes: 4 * (2 * chunks * d + total + width),
  });
  gpu.release(inv, part);
  return out;
}

/**
 * 1/‖h[idx[k]]‖ for every entry of both sets (0 for a zero row): f32 [max(1, m + n)]
 * (stage NORMS; also the first step of the |cos| histogram, ops/pair-cos-hist.ts).
 */
export function inverseNorms(gpu: Gpu, h: Tensor, sets: ContextSets): Tensor {
  const { D: d } = rowsOf('inverseNorms', h);
  const total = sets.m + sets.n;
  const inv = gpu.tensor([Math.max(1, total)], 'f32', 'contextualization.inv_norm');
  gpu.dispatch({
    kernel: 'contextualization.norms',
    pipeline: { shader: 'contextualization.wgsl', defines: { STAGE_NORMS: true }, constants: { WG: rowWorkgroup(gpu, d) } },
    params: { values: [d, sets.m, sets.n, CHUNK, 1, 0, 3] },
    bindings: [h, sets.idx, inv],
    workgroups: gpu.grid(total),
    shapes: `d=${d} m=${sets.m} n=${sets.n}`,
    flops: 2 * total * d,
    bytes: 4 * total * (d + 2),
  });
  return inv;
}

/** One result row as the metrics JSON holds it: NaN (too few rows) becomes null. */
export interface ContextScalars {
  inter: number | null;
  intra_image: number | null;
  intra_text: number | null;
}

/** Rows of a read-back result ([R, 3] or [R, 5]) as objects, NaN → null. */
export function contextScalars(values: Float32Array, width: ContextWidth = 3): ContextScalars[] {
  const out: ContextScalars[] = [];
  const v = (x: number) => (Number.isNaN(x) ? null : x);
  for (let r = 0; r + width <= values.length; r += width) out.push({ inter: v(values[r]), intra_image: v(values[r + 1]), intra_text: v(values[r + 2]) });
  return out;
}

function range(start: number, end: number): number[] {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) throw new GpuError(`contextSets: bad image range [${start}, ${end})`);
  return Array.from({ length: end - start }, (_, i) => start + i);
}
