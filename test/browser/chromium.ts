/**
 * Launching Debian's headless Chromium (playwright-core, never a downloaded browser) with
 * WebGPU, for the browser tests. Two adapter classes, one browser process each (the flags
 * are per process; DESIGN.md, "Working facts"):
 *  - core: `--enable-unsafe-webgpu` → Dawn's Vulkan backend on SwiftShader ("google
 *    swiftshader"; subgroups, timestamp-query, no shader-f16);
 *  - compatibility: plus `--use-angle=vulkan --use-webgpu-adapter=opengles` and
 *    requestAdapter({ featureLevel: 'compatibility' }) → Dawn's OpenGL ES backend on ANGLE
 *    (adapter info all empty; no optional features). With the required `--disable-gpu`,
 *    ANGLE's Vulkan is SwiftShader too (chrome://gpu: "ANGLE (Google, Vulkan 1.3.0
 *    (SwiftShader Device (Subzero)))"); only without `--disable-gpu` does it use lavapipe.
 *    Still a different WebGPU backend (WGSL → GLSL ES, compatibility-mode limits).
 *
 * Chromium missing fails the suite (it is a test dependency: `bash .ci/system-deps.sh test`
 * installs Debian's `chromium`); set PHASELENS_CHROMIUM to use another binary.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.PHASELENS_CHROMIUM ?? '/usr/bin/chromium';

const BASE_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
];

export const LAUNCH_MS = 30_000;

export interface AdapterClass {
  name: string;
  args: string[];
  featureLevel?: 'compatibility';
}

export const ADAPTERS: readonly AdapterClass[] = [
  { name: 'core (SwiftShader)', args: [] },
  { name: 'compatibility (Dawn GLES on ANGLE)', args: ['--use-angle=vulkan', '--use-webgpu-adapter=opengles'], featureLevel: 'compatibility' },
];

/** Throws, with how to fix it, when there is no Chromium: the browser tests do not skip. */
export function requireChromium(): void {
  if (existsSync(CHROMIUM)) return;
  throw new Error(
    `Chromium not found at ${CHROMIUM}. The browser tests need Debian's chromium (install it as root with ` +
      '`bash .ci/system-deps.sh test` or `apt-get install chromium`), or set PHASELENS_CHROMIUM=/path/to/chrome. They do not skip.',
  );
}

/** A browser for one adapter class, on a fresh temporary profile; close() also removes its XDG dir. */
export async function launchChromium(a: AdapterClass): Promise<{ browser: Browser; close(): Promise<void> }> {
  requireChromium();
  // The Vulkan loader (ANGLE's Vulkan backend) complains on stderr without XDG_RUNTIME_DIR.
  const xdg = process.env.XDG_RUNTIME_DIR ? undefined : mkdtempSync(join(tmpdir(), 'phaselens-xdg-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...BASE_ARGS, ...a.args],
    timeout: LAUNCH_MS,
    env: { ...process.env, ...(xdg ? { XDG_RUNTIME_DIR: xdg } : {}) },
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      if (xdg) rmSync(xdg, { recursive: true, force: true });
    },
  };
}
