/**
 * The page side of test/browser/browser.test.ts: bundled by esbuild (shaders inlined by
 * src/browser/build.ts) and loaded into headless Chromium. It imports the very modules Node
 * runs (src/gpu/browser.ts → src/gpu/context.ts, src/ops/*.ts) and exposes a small API on
 * `window.phaselensTest` that the test drives with page.evaluate. Data crosses the
 * boundary as plain number arrays (exact for f32 values); no reference math happens here.
 */
import { createBrowserGpu, type BrowserGpuOptions } from '../../src/gpu/browser.ts';
import type { Gpu, GpuFeatures } from '../../src/gpu/context.ts';
import { toF16 } from '../../src/gpu/half.ts';
import { linear, type MatmulKernel } from '../../src/ops/linear.ts';
import { attention, type AttentionVariant } from '../../src/ops/attention.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';

export interface AdapterReport {
  /** Gpu.adapterName: vendor, architecture, device, description joined. */
  adapterName: string;
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  /** Features of the adapter (a second requestAdapter with the same options). */
  adapterFeatures: string[];
  /** Features of the device phaselens created (what shaders may actually use). */
  deviceFeatures: string[];
  /** What phaselens decided to use. */
  gpuFeatures: GpuFeatures;
  /** false: the device is in compatibility mode. */
  coreFeaturesAndLimits: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  userAgent: string;
}

export interface MatmulCase {
  M: number;
  N: number;
  K: number;
  wdtype: 'f32' | 'f16';
  /** x [M, K] */
  x: number[];
  /** W [N, K] as f32 values; the page packs them to f16 for wdtype 'f16'. */
  w: number[];
  /** Force a variant (default: what linear() picks on this adapter). */
  kernel?: MatmulKernel;
}

export interface AttentionCase {
  Sq: number;
  Skv: number;
  Hq: number;
  Hkv: number;
  D: number;
  causal: boolean;
  variant: AttentionVariant;
  q: number[];
  k: number[];
  v: number[];
}

export interface LayerNormCase {
  rows: number;
  D: number;
  wdtype: 'f32' | 'f16';
  x: number[];
  weight: number[];
  bias: number[];
  eps: number;
}

export interface PageApi {
  open(opts: BrowserGpuOptions): Promise<AdapterReport>;
  matmul(c: MatmulCase): Promise<number[]>;
  attention(c: AttentionCase): Promise<number[]>;
  layerNorm(c: LayerNormCase): Promise<number[]>;
  /** The error messages createBrowserGpu gives without navigator.gpu, without an adapter, without shaders. */
  errors(): Promise<{ noNavigatorGpu: string; noAdapter: string; noShaders: string }>;
  close(): void;
}

let gpu: Gpu | undefined;
const need = (): Gpu => {
  if (!gpu) throw new Error('call open() first');
  return gpu;
};

const api: PageApi = {
  async open(opts) {
    gpu = await createBrowserGpu(opts);
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance', ...opts.adapter, ...(opts.featureLevel ? { featureLevel: opts.featureLevel } : {}) });
    const i = gpu.device.adapterInfo;
    return {
      adapterName: gpu.adapterName,
      info: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: (i as { isFallbackAdapter?: boolean }).isFallbackAdapter },
      adapterFeatures: adapter ? [...adapter.features].sort() : [],
      deviceFeatures: [...gpu.device.features].sort(),
      gpuFeatures: gpu.features,
      coreFeaturesAndLimits: gpu.device.features.has('core-features-and-limits' as GPUFeatureName),
      maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize,
      maxBufferSize: gpu.limits.maxBufferSize,
      userAgent: navigator.userAgent,
    };
  },

  async matmul({ M, N, K, wdtype, x, w, kernel }) {
    const g = need();
    const xt = g.upload(Float32Array.from(x), [M, K], 'x');
    const wt = wdtype === 'f16' ? g.upload(toF16(w), [N, K], 'w', 'f16') : g.upload(Float32Array.from(w), [N, K], 'w');
    const y = linear(g, xt, wt, { name: 'y', kernel });
    const out = await g.readF32(y);
    g.release(xt, wt, y);
    return Array.from(out);
  },

  async attention({ Sq, Skv, Hq, Hkv, D, causal, variant, q, k, v }) {
    const g = need();
    const [qt, kt, vt] = [g.upload(Float32Array.from(q), [Sq, Hq, D], 'q'), g.upload(Float32Array.from(k), [Skv, Hkv, D], 'k'), g.upload(Float32Array.from(v), [Skv, Hkv, D], 'v')];
    const o = attention(g, qt, kt, vt, { causal, variant });
    const out = await g.readF32(o);
    g.release(qt, kt, vt, o);
    return Array.from(out);
  },

  async layerNorm({ rows, D, wdtype, x, weight, bias, eps }) {
    const g = need();
    const up = (a: number[], name: string) => (wdtype === 'f16' ? g.upload(toF16(a), [D], name, 'f16') : g.upload(Float32Array.from(a), [D], name));
    const xt = g.upload(Float32Array.from(x), [rows, D], 'x');
    const [wt, bt] = [up(weight, 'weight'), up(bias, 'bias')];
    const y = layerNorm(g, xt, wt, bt, eps);
    const out = await g.readF32(y);
    g.release(xt, wt, bt, y);
    return Array.from(out);
  },

  async errors() {
    const message = (p: Promise<unknown>) =>
      p.then(
        () => 'no error',
        (e: unknown) => String(e instanceof Error ? `${e.name}: ${e.message}` : e),
      );
    // Shadow navigator.gpu on the instance, then remove the shadow again.
    Object.defineProperty(navigator, 'gpu', { value: undefined, configurable: true });
    const noNavigatorGpu = await message(createBrowserGpu());
    delete (navigator as { gpu?: GPU }).gpu;
    const real = navigator.gpu.requestAdapter;
    Object.defineProperty(navigator.gpu, 'requestAdapter', { value: async () => null, configurable: true });
    const noAdapter = await message(createBrowserGpu());
    delete (navigator.gpu as { requestAdapter?: unknown }).requestAdapter;
    if (navigator.gpu.requestAdapter !== real) throw new Error('could not restore navigator.gpu.requestAdapter');
    const noShaders = await message(createBrowserGpu({ shaders: {} }));
    return { noNavigatorGpu, noAdapter, noShaders };
  },

  close() {
    gpu?.destroy();
    gpu = undefined;
  },
};

(globalThis as unknown as { phaselensTest: PageApi }).phaselensTest = api;
