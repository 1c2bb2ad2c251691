/**
 * The page's engine glue, free of DOM code: open the adapter, open a picked checkpoint
 * (checked before any weight moves, as the CLI does), stream the weights with per-tensor
 * progress, run each item through `analyzeImage` — the function the CLI's runner calls —
 * and build the aggregate, figures and report with `analyzeReport`, the CLI's own.
 *
 * Per item, the CLI's runner rules apply: a UserError (an image that does not decode, a
 * bad prompt) fails that item and the run goes on; a result holding NaN or Inf fails the
 * item with its path; anything else (a lost device, a GPU error) stops the run.
 */
import type { ImageMetrics } from '../analysis/aggregate.ts';
import { analyzeImage, DEFAULT_PROMPT, type AnalyzeOptions } from '../analysis/analyze-image.ts';
import type { DataItem } from '../data/item.ts';
import { UserError } from '../errors.ts';
import { createBrowserGpu } from '../gpu/browser.ts';
import { checkMatmulVariants } from '../ops/matmul-check.ts';
import type { Precision } from '../ops/precision.ts';
import { fmtBytes, type Gpu } from '../gpu/context.ts';
import type { DirectorySource } from '../io/byte-source.ts';
import { decodeImage, type RgbImage } from '../io/image.ts';
import { openModel } from '../models/registry.ts';
import type { Vlm, VlmFiles } from '../models/vlm.ts';
import { adapterLine, analyzeReport } from '../pipeline/analyze-report.ts';
import { firstNonFinite } from '../util/non-finite.ts';
import type { PickedData } from './picked-data.ts';

export interface PageOptions {
  /** The question, put in the family's usual form (default: analyze's). */
  question?: string;
  /** LLaVA: the checkpoint's chat template (the CLI's --chat). */
  chat: boolean;
  dropBos: boolean;
  topk: number;
  smooth: number;
  padToSquare: boolean;
  /** The CLI's --precision (src/ops/precision.ts). */
  precision: Precision;
}

export interface ItemResult {
  item: DataItem;
  metrics: ImageMetrics & Record<string, unknown>;
  /** The decoded image, for the hover view. */
  image: RgbImage;
}

export interface ItemFailure {
  id: string;
  image: string;
  message: string;
}

/**
 * The adapter, asked for every optional feature it has. Kernels are timed only with
 * timestamp-query: without it the profiler would submit every dispatch alone, which is
 * not worth it for a table.
 */
export async function openPageGpu(featureLevel?: 'core' | 'compatibility'): Promise<Gpu> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance', ...(featureLevel && { featureLevel }) });
  const gpu = await createBrowserGpu({ featureLevel, profile: !!adapter?.features.has('timestamp-query') });
  // subgroup matrices (Chrome with unsafe WebGPU) are used only after their self-check, in
  // both forms: the precision is picked later, per run
  for (const precision of ['f32', 'f16'] as const) {
    for (const line of await checkMatmulVariants(gpu, (w) => console.warn(w), precision)) console.info(`phaselens: ${line}`);
  }
  return gpu;
}

/** The checkpoint opened without its weights, and the prompt checked on a stand-in image. */
export async function openPicked(dir: DirectorySource, o: PageOptions): Promise<{ files: VlmFiles; analyze: AnalyzeOptions }> {
  const files = await openModel(dir);
  try {
    const chat = o.chat && files.capabilities.chatTemplate;
    const prompt = { prompt: files.promptFor(o.question?.trim() || DEFAULT_PROMPT, chat), chat };
    const x = files.prepare(prompt, { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(128) });
    if (o.dropBos && x.groups.bos === null) throw new UserError('drop BOS: this prompt has no BOS token');
    return { files, analyze: { prompt, dropBos: o.dropBos, topk: o.topk, smooth: o.smooth, padToSquare: o.padToSquare } };
  } catch (e) {
    await files.close();
    throw e;
  }
}

/** Streams the weights; a failure says how far it got and what the adapter offers. */
export async function loadPicked(gpu: Gpu, files: VlmFiles, precision: Precision, onTensor: (done: number, total: number) => void): Promise<Vlm> {
  let done = 0;
  let total = 0;
  try {
    return await files.load(gpu, {
      precision,
      onProgress: (d, t) => {
        [done, total] = [d, t];
        onTensor(d, t);
      },
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new UserError(`${files.name}: loading the weights stopped after ${done} of ${total || '?'} tensors: ${msg}\n${adapterLimits(gpu)}`);
  }
}

/** What the adapter offers, for messages about models that do not fit. */
export function adapterLimits(gpu: Gpu): string {
  return `adapter ${gpu.adapterName}: maxBufferSize ${fmtBytes(gpu.limits.maxBufferSize)}, maxStorageBufferBindingSize ${fmtBytes(gpu.limits.maxStorageBufferBindingSize)} (WebGPU does not report total GPU memory)`;
}

/** Every item through the instrumented forward, one at a time. */
export async function analyzeItems(
  gpu: Gpu,
  m: Vlm,
  data: PickedData,
  o: AnalyzeOptions,
  onItem: (done: number, total: number, r: ItemResult | ItemFailure) => void,
): Promise<{ results: ItemResult[]; failures: ItemFailure[] }> {
  const results: ItemResult[] = [];
  const failures: ItemFailure[] = [];
  for (const item of data.items) {
    let r: ItemResult | ItemFailure;
    try {
      const image = await decodeItem(data, item);
      const metrics = (await analyzeImage(gpu, m, item, image, o)) as ItemResult['metrics'];
      const bad = firstNonFinite(metrics);
      if (bad) throw new UserError(`non-finite value (${bad.value}) at ${bad.path}`);
      r = { item, metrics, image };
      results.push(r);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      r = { id: item.id, image: item.image, message: e.message };
      failures.push(r);
    }
    onItem(results.length + failures.length, data.items.length, r);
  }
  return { results, failures };
}

async function decodeItem(data: PickedData, item: DataItem): Promise<RgbImage> {
  const blob = data.blob(item);
  if (!blob) throw new UserError(`${item.image}: not among the picked files`);
  return decodeImage(new Uint8Array(await blob.arrayBuffer()), { name: item.image });
}

/** The aggregate, figures and report of a finished run, as the CLI builds them. */
export function finishPage(gpu: Gpu, data: PickedData, results: readonly ItemResult[], failures: readonly ItemFailure[], smooth: number) {
  return analyzeReport(
    results.map((r) => r.metrics),
    failures.map((f) => ({ image: f.image, error: f.message })),
    smooth,
    { dataset: data.spec, adapter: adapterLine(gpu), options: { front_end: 'phaselens web page' } },
  );
}
