/**
 * The Node entry to the GPU: Dawn through the `webgpu` package. The only file that
 * imports `webgpu`; everything else takes a Gpu (or GPUDevice) so the browser build
 * reuses it.
 */
import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { Gpu, type GpuOptions } from './context.ts';
import { UserError } from '../errors.ts';
import { KERNELS_ENV, parseKernelChoice } from './adapter-class.ts';

let instance: GPU | undefined;

/**
 * Dawn toggles of the instance (dawn.node passes them on to every adapter and device it
 * makes; one `enable-dawn-features=` flag, since a second would replace the first):
 *   allow_unsafe_apis            lists experimental features such as subgroup matrices
 *                                (requested only where a kernel uses them, see Gpu.fromAdapter);
 *   vulkan_enable_f16_on_nvidia  Dawn's Vulkan backend hides `shader-f16` on NVIDIA unless this
 *                                adapter toggle is on (PhysicalDeviceVk.cpp, crbug.com/42251215:
 *                                CTS failures under investigation), and with it every f16
 *                                subgroup-matrix configuration; no effect on other vendors.
 *                                The f16 variants pass their self-check before use
 *                                (src/ops/matmul-check.ts), which is what guards against those.
 */
export const DAWN_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'] as const;

const SHADERS = new URL('../../shaders/', import.meta.url);

/** Reads shaders/<path> from the package. */
export function nodeShaderLoader(path: string): string {
  return readFileSync(new URL(path, SHADERS), 'utf8');
}

export const NO_ADAPTER_HELP = `no WebGPU adapter found.
phaselens needs a Vulkan driver for Dawn. On a machine without a GPU, install Mesa's lavapipe (Mesa >= 25;
Debian bookworm's own Mesa 22 is refused by Dawn):
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list
  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
(or run: bash .ci/system-deps.sh gpu). On a GPU server install the vendor's Vulkan driver and libvulkan1.`;

export async function createNodeGpu(opts: GpuOptions & { powerPreference?: GPUPowerPreference } = {}): Promise<Gpu> {
  // lavapipe complains on stderr when XDG_RUNTIME_DIR is unset
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), 'phaselens-xdg');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  const adapter = await nodeAdapter(opts.powerPreference);
  return Gpu.fromAdapter(adapter, nodeShaderLoader, { ...opts, kernels: opts.kernels ?? parseKernelChoice(process.env[KERNELS_ENV], KERNELS_ENV) });
}

/** The adapter of the process's one Dawn instance (or a UserError that says how to install a driver). */
export async function nodeAdapter(powerPreference?: GPUPowerPreference): Promise<GPUAdapter> {
  Object.assign(globalThis, globals);
  // Dawn's instance must outlive every device made from it: if the GPU object is garbage
  // collected, Dawn's event loop runs on freed memory and the process dies at random.
  instance ??= create([`enable-dawn-features=${DAWN_TOGGLES.join(',')}`]);
  return adapterOrExplain(instance, powerPreference);
}

let nullInstance: GPU | undefined;

/**
 * Dawn's Null backend: every feature (subgroup matrices included, with allow_unsafe_apis),
 * real WGSL compilation and validation, no execution. The compile test builds every kernel
 * variant on it.
 */
export async function nullAdapter(): Promise<GPUAdapter> {
  Object.assign(globalThis, globals);
  nullInstance ??= create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  const adapter = await nullInstance.requestAdapter();
  if (!adapter) throw new Error("Dawn's Null backend gave no adapter");
  return adapter;
}

/** The adapter, or a UserError that says how to install a driver. */
export async function adapterOrExplain(gpu: GPU, powerPreference: GPUPowerPreference = 'high-performance'): Promise<GPUAdapter> {
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) throw new UserError(NO_ADAPTER_HELP);
  return adapter;
}
