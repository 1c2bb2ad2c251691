/**
 * The Dawn toggles phaselens turns on (src/gpu/node.ts DAWN_TOGGLES). Dawn ignores a toggle
 * name it does not know without a word, so a rename in a `webgpu` update would silently
 * switch f16 off on NVIDIA again: each name must be one the shipped dawn.node knows.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DAWN_TOGGLES } from '../../src/gpu/node.ts';
import { getGpu } from '../helpers/gpu.ts';

const require = createRequire(import.meta.url);
const DAWN = join(dirname(require.resolve('webgpu/package.json')), 'dist', `${process.platform}-${process.arch}`, 'dawn.node');

describe('Dawn toggles', () => {
  it('turns on allow_unsafe_apis and vulkan_enable_f16_on_nvidia, names the shipped dawn.node knows', () => {
    expect([...DAWN_TOGGLES].sort()).toEqual(['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia']);
    const binary = readFileSync(DAWN).toString('latin1');
    for (const t of DAWN_TOGGLES) expect(binary.includes(`\0${t}\0`), t).toBe(true);
    expect(binary.includes('\0no_such_toggle_xyz\0')).toBe(false); // the search can fail
  });

  it('with them, this machine still gets its adapter and shader-f16', async () => {
    const gpu = await getGpu();
    expect(gpu.adapterName).toMatch(/llvmpipe/);
    expect(gpu.features.f16).toBe(true);
  });
});
