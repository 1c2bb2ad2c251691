/**
 * The browser build of phaselens: the WebGPU runtime from navigator.gpu plus every op,
 * the same modules Node runs. Bundle it (shaders inlined) with
 *   node src/cli/run-ts.mjs src/browser/build.ts      → out/browser/phaselens.js
 * and in a page:
 *   import { createBrowserGpu, linear } from './phaselens.js';
 *   const gpu = await createBrowserGpu();            // or { featureLevel: 'compatibility' }
 *   const y = await gpu.readF32(linear(gpu, gpu.upload(x, [M, K], 'x'), gpu.upload(w, [N, K], 'w')));
 */
export { createBrowserGpu, browserShaderLoader, type BrowserGpuOptions } from '../gpu/browser.ts';
export { Gpu, type GpuFeatures, type GpuOptions } from '../gpu/context.ts';
export { Tensor, type DType } from '../gpu/tensor.ts';
export { GpuError } from '../gpu/errors.ts';
export { UserError } from '../errors.ts';
export { toF16, fromF16, roundF16 } from '../gpu/half.ts';
export * from '../ops/index.ts';
