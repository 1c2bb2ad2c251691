import { describe, expect, it } from 'vitest';
import { PipelineCache } from '../../src/gpu/pipelines.ts';
import { expandWgsl } from '../../src/gpu/wgsl.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { linear } from '../../src/ops/linear.ts';
import { Profiler } from '../../src/gpu/profiler.ts';
import { getGpu, randn } from '../helpers/gpu.ts';
import { NO_ADAPTER_HELP, adapterOrExplain } from '../../src/gpu/node.ts';

const files: Record<string, string> = {
  'main.wgsl': ['#include "lib/a.wgsl"', '#if FAST', 'const mode = 1u;', '#else', 'const mode = 2u;', '#endif', 'const n = $N;'].join('\n'),
  'lib/a.wgsl': ['// helper', 'fn helper() -> u32 { return 1u; }'].join('\n'),
  'broken.wgsl': ['#include "lib/a.wgsl"', '@compute @workgroup_size(1)', 'fn main() {', '  let x: u32 = helper() + undefined_name;', '}'].join('\n'),
};
const load = (p: string) => {
  if (!(p in files)) throw new Error(`no ${p}`);
  return files[p];
};

describe('WGSL preprocessor', () => {
  it('includes once, selects #if blocks, substitutes $NAMES and maps lines to files', () => {
    const a = expandWgsl('main.wgsl', load, { FAST: true, N: 7 });
    expect(a.code).toContain('fn helper()');
    expect(a.code).toContain('const mode = 1u;');
    expect(a.code).not.toContain('const mode = 2u;');
    expect(a.code).toContain('const n = 7;');
    expect(a.origin[a.code.split('\n').indexOf('const n = 7;')]).toBe('main.wgsl:7');
    expect(a.origin[0]).toBe('lib/a.wgsl:1');
    const b = expandWgsl('main.wgsl', load, { FAST: false, N: 1 });
    expect(b.code).toContain('const mode = 2u;');
  });

  it('refuses an undefined $NAME and unbalanced #if', () => {
    expect(() => expandWgsl('main.wgsl', load, {})).toThrow(/main.wgsl:7: \$N is not defined/);
    files['bad-if.wgsl'] = '#if X\nconst a = 1;';
    expect(() => expandWgsl('bad-if.wgsl', load, {})).toThrow(/unterminated #if/);
  });

  it('unrolls blocks, nested and under #if, with the index substituted', () => {
    files['unroll.wgsl'] = ['#unroll I N', '#unroll J 2', 'a[$I * 2 + $J] = $I;', '#endunroll', '#if !SKIP', 'b[$I] = 0;', '#endif', '#endunroll'].join('\n');
    const u = expandWgsl('unroll.wgsl', load, { N: 2 });
    expect(u.code.split('\n')).toEqual(['a[0 * 2 + 0] = 0;', 'a[0 * 2 + 1] = 0;', 'b[0] = 0;', 'a[1 * 2 + 0] = 1;', 'a[1 * 2 + 1] = 1;', 'b[1] = 0;']);
    expect(u.origin[3]).toBe('unroll.wgsl:3');
    expect(expandWgsl('unroll.wgsl', load, { N: 1, SKIP: true }).code.split('\n')).toEqual(['a[0 * 2 + 0] = 0;', 'a[0 * 2 + 1] = 0;']);
    files['bad-unroll.wgsl'] = '#unroll I 2\nx;';
    expect(() => expandWgsl('bad-unroll.wgsl', load, {})).toThrow(/bad-unroll.wgsl:1: #unroll without #endunroll/);
  });
});

describe('GPU runtime errors', () => {
  it('reports a WGSL compile error at the source file and line', async () => {
    const gpu = await getGpu();
    const cache = new PipelineCache(gpu.device, load);
    gpu.device.pushErrorScope('validation');
    cache.get({ shader: 'broken.wgsl' });
    await gpu.device.popErrorScope();
    await expect(cache.check()).rejects.toThrow(/broken\.wgsl:4:\d+: .*undefined_name/);
  });

  it('names the tensor, its size and the limit when a tensor exceeds the binding limit', async () => {
    const gpu = await getGpu();
    const limit = gpu.limits.maxStorageBufferBindingSize;
    expect(() => gpu.tensor([Math.ceil(limit / 4) + 1024], 'f32', 'lm_head.weight')).toThrow(/lm_head\.weight .* over this device's storage-binding limit of/);
  });

  it('refuses a workgroup grid over the per-dimension limit, naming the kernel', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(randn(8, 1), [2, 4], 'x');
    expect(() =>
      gpu.dispatch({
        kernel: 'matmul.f32',
        pipeline: { shader: 'matmul.wgsl', defines: { VEC4: true, W_F16: false, W_BINDING: 2, BIAS: false, RESIDUAL: false, ACT: 0 } },
        params: { values: [2, 2, 4] },
        bindings: [x, x, null, null, x],
        workgroups: [gpu.limits.maxComputeWorkgroupsPerDimension + 1],
        shapes: 'M=2',
      }),
    ).toThrow(/matmul\.f32 \(M=2\).*exceeds the device limit/);
  });

  it('turns a validation error into a thrown error naming the kernel and buffers', async () => {
    const gpu = await getGpu();
    const x = gpu.upload(randn(8, 1), [2, 4], 'small_x');
    const u = gpu.tensor([4], 'u32', 'wrong_kind');
    // bind an output that is too small for nothing to catch on the host: the runtime must surface Dawn's error
    gpu.dispatch({
      kernel: 'matmul.f32',
      pipeline: { shader: 'matmul.wgsl', defines: { VEC4: true, W_F16: false, W_BINDING: 2, BIAS: true, RESIDUAL: false, ACT: 0 } },
      params: { values: [2, 2, 4] },
      bindings: [x, x, null, null, u], // BIAS declared but binding 3 missing
      workgroups: [1, 1],
      shapes: 'M=2 N=2 K=4',
    });
    await expect(gpu.sync()).rejects.toThrow(/matmul\.f32 \(M=2 N=2 K=4\) buffers small_x/);
  });

  it('explains how to install a driver when there is no adapter', async () => {
    const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
    await expect(adapterOrExplain(noAdapter)).rejects.toThrow(NO_ADAPTER_HELP);
    expect(NO_ADAPTER_HELP).toMatch(/bookworm-backports mesa-vulkan-drivers/);
  });
});

describe('profiler', () => {
  it('counts every dispatch per kernel and writes a Chrome trace', async () => {
    const g = await getProfiledGpu();
    const x = g.upload(randn(64 * 32, 1), [64, 32], 'x');
    const w = g.upload(randn(48 * 32, 2), [48, 32], 'w');
    for (let i = 0; i < 3; i++) linear(g, x, w);
    await g.sync();
    const rows = g.profiler!.summary();
    const mm = rows.filter((r) => r.kernel.startsWith('matmul'));
    expect(mm).toHaveLength(1); // one variant for one shape
    expect(mm[0].calls).toBe(3);
    // the pipeline's first dispatch (compilation on lazily compiling drivers) is apart from the steady ones
    expect(mm[0].steadyCalls).toBe(2);
    expect(mm[0].ms).toBeGreaterThan(0);
    expect(mm[0].firstMs).toBeGreaterThan(0);
    const table = g.profiler!.table(g.pipelines.created);
    expect(table).toContain(mm[0].kernel);
    expect(table).toMatch(/\s3\s/);
    expect(table).toMatch(/pipeline creation on the host: [1-9]\d* pipelines in [\d.]+ ms/);
    // with a peak, each rate is also a share of it: 1 GFLOP/s of a 1 TFLOP/s peak is 0.1 %
    const withPeak = g.profiler!.table(g.pipelines.created, { name: 'test peak', tflops: mm[0].gflops / 1000 / 0.25, tensorTflops: NaN, gbs: mm[0].gbps / 0.5, units: NaN });
    expect(withPeak).toContain('% FLOP peak');
    expect(withPeak).toMatch(new RegExp(`${mm[0].kernel.replace(/\./g, '\\.')}.*\\s25\\.0\\s+50\\.0\\s*$`, 'm'));
    expect(withPeak).toContain('peak of test peak');
    const trace = g.profiler!.trace() as { traceEvents: { name: string; ph: string; tid: number; dur: number }[] };
    const events = trace.traceEvents.filter((e) => e.name === mm[0].kernel && e.ph === 'X');
    expect(events.map((e) => e.tid).sort()).toEqual([1, 1, 3]);
  });

  // Submissions overlap (several in flight, each ends when the queue drains), so the host
  // wall is the union of their intervals, never their sum.
  const hostWall = (table: string) => Number(/\(([\d.]+) ms host wall|: ([\d.]+) ms for \d+ dispatches/.exec(table)!.slice(1).find((v) => v !== undefined));

  it('host wall of constructed submissions is the union of their intervals', async () => {
    const p = new Profiler((await getGpu()).device, false);
    // [0,10] ∪ [2,8] ∪ [5,15] ∪ [20,25] ∪ [24,30] ∪ [40,40] = 15 + 10 = 25 ms (their sum: 37)
    for (const [start, end] of [[0, 10], [2, 8], [5, 15], [20, 25], [24, 30], [40, 40]]) p.submissions.push({ start, end, dispatches: 1 });
    expect(hostWall(p.table())).toBe(25);
    const q = new Profiler((await getGpu()).device, true);
    for (const [start, end] of [[5, 15], [0, 10]]) q.submissions.push({ start, end, dispatches: 1 });
    expect(hostWall(q.table())).toBe(15);
  });

  it('host wall of a real run with many submissions in flight is at most the elapsed time', async () => {
    const g = await getProfiledGpu();
    const t0 = performance.now();
    const x = g.upload(randn(64 * 32, 3), [64, 32], 'x');
    const w = g.upload(randn(48 * 32, 4), [48, 32], 'w');
    for (let i = 0; i < 40; i++) {
      g.release(linear(g, x, w));
      g.flush(); // one submission per dispatch, none waited for
    }
    await g.sync();
    const elapsed = performance.now() - t0;
    expect(g.profiler!.submissions.length).toBeGreaterThanOrEqual(40);
    const wall = hostWall(g.profiler!.table());
    expect(wall).toBeGreaterThan(0);
    expect(wall).toBeLessThanOrEqual(elapsed + 0.1); // the footer rounds to 0.1 ms
    g.destroy();
  });
});

async function getProfiledGpu(): Promise<Gpu> {
  const { createNodeGpu } = await import('../../src/gpu/node.ts');
  return createNodeGpu({ profile: true });
}

describe('params cache', () => {
  it('stays bounded and correct when every dispatch has new params (decoding positions)', async () => {
    const { scale } = await import('../../src/ops/elementwise.ts');
    const gpu = await getGpu();
    let x = gpu.upload(Float32Array.of(1, 2, 3), [3], 'x');
    let want = [1, 2, 3];
    const steps = 4200; // more than the cache holds
    for (let i = 0; i < steps; i++) {
      const alpha = (i % 2 ? 2 : 0.5) * (1 + i * 1e-7);
      const y = scale(gpu, x, alpha);
      gpu.release(x);
      x = y;
      want = want.map((v) => Math.fround(v * Math.fround(alpha)));
      if (i % 500 === 0) await gpu.sync();
    }
    const got = await gpu.readF32(x);
    expect(Array.from(got)).toEqual(want);
    expect((gpu as unknown as { uniforms: Map<string, GPUBuffer> }).uniforms.size).toBeLessThanOrEqual(4096);
  });
});
