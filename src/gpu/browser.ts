/**
 * The browser entry to the GPU: `navigator.gpu`, no `webgpu` import. It finds an adapter
 * and a shader loader; everything after that is Gpu.fromAdapter, the code Node runs.
 *
 * Shaders come from a map of every shaders/**.wgsl bundled at build time (see
 * src/browser/shaders.ts and the esbuild plugin in src/browser/build.ts), keyed by the
 * same relative paths the Node loader reads ('matmul.wgsl', 'lib/activations.wgsl'), so
 * `#include "lib/x.wgsl"` resolves identically in both.
 *
 * What Chrome gives (Linux, measured with Debian Chromium 156):
 *  - `--enable-unsafe-webgpu`: SwiftShader (CPU), core feature level; subgroups and
 *    timestamp-query but no shader-f16, 1 GiB storage bindings.
 *  - `--use-angle=vulkan --use-webgpu-adapter=opengles` with featureLevel 'compatibility':
 *    Dawn's OpenGL ES backend over ANGLE (on lavapipe, or on SwiftShader's Vulkan under
 *    `--disable-gpu`); adapter info is empty, no optional features at all.
 * Neither has shader-f16: fp16 weights stay packed two per u32 and are unpacked with
 * `unpack2x16float`, which is core WGSL.
 */
import { Gpu, type GpuOptions } from './context.ts';
import type { ShaderLoader } from './wgsl.ts';
import { UserError } from '../errors.ts';
import { SHADERS } from '../browser/shaders.ts';

export interface BrowserGpuOptions extends GpuOptions {
  /**
   * 'compatibility' accepts adapters that only reach WebGPU's compatibility subset
   * (OpenGL ES / D3D11 backends); the device is then created in compatibility mode.
   * Default: the browser's default ('core').
   */
  featureLevel?: 'core' | 'compatibility';
  /** Passed to requestAdapter (default powerPreference 'high-performance'); featureLevel above wins. */
  adapter?: GPURequestAdapterOptions;
  /** Shader sources keyed by path under shaders/ (default: the map bundled at build time). */
  shaders?: Readonly<Record<string, string>>;
}

export async function createBrowserGpu(opts: BrowserGpuOptions = {}): Promise<Gpu> {
  const loader = browserShaderLoader(opts.shaders ?? SHADERS);
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new UserError(noWebGpuHelp());
  const request: GPURequestAdapterOptions = { powerPreference: 'high-performance', ...opts.adapter };
  if (opts.featureLevel) request.featureLevel = opts.featureLevel;
  const adapter = await gpu.requestAdapter(request);
  if (!adapter) throw new UserError(noAdapterHelp(request));
  return Gpu.fromAdapter(adapter, loader, opts);
}

/** A ShaderLoader over a bundled map; a missing file is named together with what the map holds. */
export function browserShaderLoader(shaders: Readonly<Record<string, string>>): ShaderLoader {
  const names = Object.keys(shaders);
  if (!names.length) {
    throw new UserError(
      'phaselens: no WGSL shaders were bundled. Build the browser bundle with shaderMapPlugin() from ' +
        'src/browser/build.ts (e.g. `node src/cli/run-ts.mjs src/browser/build.ts`), or pass ' +
        'createBrowserGpu({ shaders }) with every shaders/**.wgsl keyed by its path under shaders/.',
    );
  }
  return (path: string) => {
    const key = path.replace(/^(\.\/)+/, '');
    const src = shaders[key];
    if (src === undefined) throw new UserError(`shader ${path} is not in the bundled shader map (it has: ${names.sort().join(', ')}); rebuild the bundle`);
    return src;
  };
}

function noWebGpuHelp(): string {
  const secure = (globalThis as { isSecureContext?: boolean }).isSecureContext;
  if (secure === false) {
    return 'WebGPU is only exposed to secure contexts: serve the page over https, or from http://localhost / http://127.0.0.1.';
  }
  return (
    'this browser exposes no WebGPU (navigator.gpu is missing). Use a browser with WebGPU enabled ' +
    '(Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows); on Linux, Chrome needs ' +
    '--enable-unsafe-webgpu (or chrome://flags/#enable-unsafe-webgpu).'
  );
}

function noAdapterHelp(request: GPURequestAdapterOptions): string {
  return (
    `navigator.gpu.requestAdapter(${JSON.stringify(request)}) returned no adapter: the browser has WebGPU ` +
    'but no usable GPU (blocklisted driver, or GPU access disabled; chrome://gpu says why). ' +
    'In Chrome, --enable-unsafe-webgpu allows blocklisted adapters and the SwiftShader CPU fallback; ' +
    "an adapter that lacks core WebGPU may still be found with featureLevel: 'compatibility'."
  );
}
