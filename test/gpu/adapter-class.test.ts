/**
 * Adapter classes (src/gpu/adapter-class.ts): what real adapters report is classified as
 * they are; an adapter without evidence is never taken for a discrete GPU; and the
 * kernel class can be forced, so the GPU-class variants of every op the models use run
 * here on lavapipe and agree with the CPU-class ones — a whole dump of each family.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyAdapter, kernelClass } from '../../src/gpu/adapter-class.ts';
import { adapterPeak } from '../../src/gpu/peaks.ts';
import { Profiler } from '../../src/gpu/profiler.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { pickMatmulKernel } from '../../src/ops/linear.ts';
import { dumpActivations } from '../../src/probes/dump.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { getGpu, relErr } from '../helpers/gpu.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const LLAVA_PROMPT = '<image>\nWhat is this?';
const work = mkdtempSync(join(tmpdir(), 'phaselens-kernel-class-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('classifyAdapter', () => {
  // adapter info as Dawn and Chrome report it (vendor, architecture, device, description)
  it.each([
    [{ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7' }, 'cpu'],
    [{ vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader Device (Subzero)' }, 'cpu'],
    [{ vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3' }, 'discrete'],
    [{ vendor: 'amd', architecture: 'rdna-3', device: '', description: 'AMD Radeon RX 7900 XTX' }, 'discrete'],
    [{ vendor: 'amd', architecture: 'rdna-2', device: '', description: 'AMD Radeon(TM) Graphics' }, 'integrated'],
    [{ vendor: 'intel', architecture: 'gen-12lp', device: '', description: 'Intel(R) UHD Graphics 770' }, 'integrated'],
    [{ vendor: 'intel', architecture: 'xe-hpg', device: '', description: 'Intel(R) Arc(TM) A770 Graphics' }, 'discrete'],
    [{ vendor: 'apple', architecture: 'metal-3', device: '', description: '' }, 'integrated'],
    [{ vendor: 'qualcomm', architecture: 'adreno-7xx', device: '', description: '' }, 'integrated'],
    [{ vendor: '', architecture: '', device: '', description: '' }, 'unknown'],
    [{ vendor: 'acme', architecture: '', device: '', description: 'Acme Accelerator' }, 'unknown'],
  ])('%j is %s', (info, want) => {
    expect(classifyAdapter({ info }).adapterClass).toBe(want);
  });

  it('takes isFallbackAdapter over the name, and gives an empty-info adapter GPU kernels but no discrete class', () => {
    expect(classifyAdapter({ info: { vendor: 'nvidia', isFallbackAdapter: true } })).toEqual({ adapterClass: 'cpu', evidence: 'isFallbackAdapter' });
    expect(classifyAdapter({ info: {}, isFallbackAdapter: true }).adapterClass).toBe('cpu');
    const compat = classifyAdapter({ info: {} });
    expect(compat.adapterClass).toBe('unknown');
    expect(kernelClass(compat.adapterClass)).toBe('gpu');
    expect(kernelClass('cpu')).toBe('cpu');
    expect(kernelClass('cpu', 'gpu')).toBe('gpu');
    expect(kernelClass('discrete', 'cpu')).toBe('cpu');
  });
});

describe('forced kernel classes on this machine', () => {
  let gpuClass: Gpu;

  it('lavapipe is CPU class by default, GPU class when forced', async () => {
    const auto = await getGpu();
    expect(auto.adapterClass.adapterClass).toBe('cpu');
    expect(auto.kernels).toBe('cpu');
    gpuClass = await createNodeGpu({ kernels: 'gpu' });
    expect(gpuClass.kernels).toBe('gpu');
    expect(gpuClass.kernelsForced).toBe(true);
    expect(pickMatmulKernel(gpuClass, 1)).toBe('gemv');
    expect(pickMatmulKernel(gpuClass, 600)).toBe('tiled');
    if (auto.features.subgroups) expect(pickMatmulKernel(auto, 600)).toBe('subgroup');
  });

  // Both classes accumulate in f32 over the same inputs and differ only in summation order
  // and workgroup shapes: 1e-5 of each tensor's scale (the kernel tests' bound for f32).
  // The time limits are for a cold shader cache on 2 loaded cores, where compiling the
  // GPU-class variants for lavapipe takes minutes (measured 293 s for LLaVA at load 6).
  it.each(['llava', 'instructblip'] as const)('%s: a whole dump with GPU-class kernels equals the CPU-class dump', async (arch) => {
    const dir = join(work, arch);
    await makeTiny({ arch, seed: 11, out: dir });
    const dumps = [];
    for (const gpu of [await getGpu(), gpuClass]) {
      const m = await loadDir(gpu, dir);
      const x = prepareFile(m, { prompt: arch === 'llava' ? LLAVA_PROMPT : 'What is this?' }, IMAGE);
      dumps.push(await dumpActivations(gpu, m, x));
    }
    const [cpu, gpu] = dumps;
    expect([...gpu.keys()].sort()).toEqual([...cpu.keys()].sort());
    for (const [name, t] of cpu) {
      expect(gpu.get(name)!.shape, name).toEqual(t.shape);
      expect(relErr(gpu.get(name)!.data, t.data), name).toBeLessThanOrEqual(1e-5);
    }
  }, 900_000);

  it('PHASELENS_KERNELS forces the class of a new device', async () => {
    const before = process.env.PHASELENS_KERNELS;
    process.env.PHASELENS_KERNELS = 'gpu';
    try {
      const g = await createNodeGpu();
      expect([g.kernels, g.kernelsForced]).toEqual(['gpu', true]);
    } finally {
      if (before === undefined) delete process.env.PHASELENS_KERNELS;
      else process.env.PHASELENS_KERNELS = before;
    }
  });

  it('--kernels and PHASELENS_KERNELS: named on the GPU line; a bad value is a clear error', () => {
    const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    // the prompt of the dump above, so the GPU-class pipelines come from Mesa's shader cache
    const dump = ['dump', '--model', join(work, 'llava'), '--image', IMAGE, '--prompt', LLAVA_PROMPT, '--out', join(work, 'd.safetensors')];
    const forced = run([...dump, '--kernels', 'gpu']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/\(cpu: isFallbackAdapter; gpu kernels, forced;/);
    const bad = run([...dump, '--kernels', 'fast']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--kernels must be auto, cpu or gpu, got "fast"');
    const peak = run([...dump, '--profile', join(work, 'trace.json'), '--peak-tflops', '0.5', '--peak-gbs', '20']);
    expect(peak.status, peak.stderr).toBe(0);
    expect(peak.stdout).toContain('% FLOP peak');
    expect(peak.stdout).toContain('peak of given: 0.5 TFLOP/s FP32, 20 GB/s');
    const badPeak = run([...dump, '--peak-tflops', 'lots']);
    expect(badPeak.status).toBe(2);
    expect(badPeak.stderr).toContain('--peak-tflops must be a positive number, got lots');
    const badEnv = run(dump, { PHASELENS_KERNELS: 'fast' });
    expect(badEnv.status).toBe(2);
    expect(badEnv.stderr).toContain('PHASELENS_KERNELS must be auto, cpu or gpu');
  }, 900_000);
});

describe('adapterPeak', () => {
  it('knows common GPUs by their description, takes overrides, and has nothing for a software adapter', () => {
    expect(adapterPeak('nvidia hopper  NVIDIA H100 80GB HBM3')).toEqual({ name: 'NVIDIA H100 SXM', tflops: 67, tensorTflops: 989, gbs: 3350, units: 132 });
    expect(adapterPeak('nvidia hopper  NVIDIA H100 PCIe')?.name).toBe('NVIDIA H100 PCIe');
    expect(adapterPeak('nvidia  NVIDIA H200')?.gbs).toBe(4800);
    expect(adapterPeak('mesa software llvmpipe')).toBeNull();
    expect(adapterPeak('mesa software llvmpipe', { tflops: 0.2 })).toMatchObject({ name: 'given', tflops: 0.2 });
    expect(adapterPeak('NVIDIA H200', { gbs: 4000 })).toEqual({ name: 'NVIDIA H200, overridden', tflops: 67, tensorTflops: 989, gbs: 4000, units: 132 });
    expect(adapterPeak('NVIDIA H200', { tensorTflops: 900 })?.tensorTflops).toBe(900);
  });

  it('has the GPUs the issue names, each with a tensor peak at or above its FP32 one', () => {
    const names: [string, string][] = [
      ['nvidia hopper NVIDIA H100 80GB HBM3', 'NVIDIA H100 SXM'],
      ['nvidia hopper NVIDIA H100 PCIe', 'NVIDIA H100 PCIe'],
      ['nvidia hopper NVIDIA H200', 'NVIDIA H200'],
      ['nvidia ampere NVIDIA A100-SXM4-80GB', 'NVIDIA A100 80GB'],
      ['nvidia ada NVIDIA L40S', 'NVIDIA L40S'],
      ['nvidia ada NVIDIA GeForce RTX 4090', 'NVIDIA GeForce RTX 4090'],
      ['apple metal-3 Apple M1 Max', 'Apple M1 Max (32-core GPU)'],
      ['apple metal-3 Apple M2', 'Apple M2 (10-core GPU)'],
      ['apple metal-3 Apple M2 Ultra', 'Apple M2 Ultra (76-core GPU)'],
    ];
    for (const [adapter, name] of names) {
      const p = adapterPeak(adapter)!;
      expect(p.name, adapter).toBe(name);
      expect(p.tensorTflops).toBeGreaterThanOrEqual(p.tflops);
    }
  });

  it("the profile's % of peak: the tensor peak for tensor-core kernels, the FP32 peak for the others", async () => {
    const p = new Profiler((await getGpu()).device, true);
    // 1 ms each, 2 steady calls of 10 GFLOP (10 TFLOP/s) per kernel
    for (const [kernel, tensorCores] of [['matmul.sgmat.f16', true], ['matmul.tiled.f16', false]] as const) {
      for (const first of [true, false, false]) p.records.push({ kernel, shapes: '-', flops: 1e10, bytes: 1e9, first, tensorCores, begin: 0, end: 1e6 });
    }
    const t = p.table(undefined, { name: 'test', tflops: 50, tensorTflops: 1000, gbs: 2000, units: NaN });
    expect(t).toMatch(/^matmul\.sgmat\.f16 .* 1\.0 \(tensor\)\s+50\.0$/m); // 10 of 1000 TFLOP/s; 1000 of 2000 GB/s
    expect(t).toMatch(/^matmul\.tiled\.f16 .* 20\.0\s+50\.0$/m); // 10 of 50
    expect(t).toContain('1000 TFLOP/s FP16 on the matrix units');
  });
});
