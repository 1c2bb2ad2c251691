/**
 * The GPU runtime every op records into. It owns the device, the pipeline cache, one
 * open command encoder, the profiler, and the bookkeeping that turns WebGPU's
 * asynchronous errors into thrown errors naming the kernel, its shapes and buffers.
 *
 * Recording: consecutive dispatches share one compute pass (a copy ends it) and everything
 * recorded goes to the queue in one submission at `flush`, `sync` or a readback, with one
 * error scope; so a forward (the prefill, a decode step) is one submission. Buffers, bind
 * groups and params buffers are reused from step to step (`tensor`, `bindGroup`, `uniform`).
 *
 * Node (Dawn) and the browser share this file; only src/gpu/node.ts imports `webgpu`.
 */
import { GpuError } from './errors.ts';
import { PipelineCache, type PipelineKey } from './pipelines.ts';
import { Profiler } from './profiler.ts';
import { byteSize, numel, Tensor, type DType } from './tensor.ts';
import type { ShaderLoader } from './wgsl.ts';
import { fromF16 } from './half.ts';
import { classifyAdapter, kernelClass, type Classified, type KernelChoice, type KernelClass } from './adapter-class.ts';

export interface GpuFeatures {
  f16: boolean;
  timestamps: boolean;
  subgroups: boolean;
}

/** The subgroup-matrix configuration the 'sgmat' matmul uses: f16 × f16 → f32, result M × N, inner K. */
export interface SubgroupMatrix {
  M: number;
  N: number;
  K: number;
  /** The adapter's largest subgroup: the kernel's workgroups are whole subgroups of it. */
  subgroupSize: number;
  /** The WGSL extension that enables them (see SUBGROUP_MATRIX_FEATURES). */
  extension: string;
}

/**
 * The feature and its WGSL extension: the gpuweb draft's names first, used when an adapter
 * offers them, then Dawn's experimental ones (which need the toggle allow_unsafe_apis).
 */
export const SUBGROUP_MATRIX_FEATURES = [
  { feature: 'subgroup-matrix', extension: 'subgroup_matrix' },
  { feature: 'chromium-experimental-subgroup-matrix', extension: 'chromium_experimental_subgroup_matrix' },
] as const;

/** The first of SUBGROUP_MATRIX_FEATURES that `has` reports, or null. */
export function subgroupMatrixFeature(has: (feature: string) => boolean): (typeof SUBGROUP_MATRIX_FEATURES)[number] | null {
  return SUBGROUP_MATRIX_FEATURES.find((f) => has(f.feature)) ?? null;
}

interface MatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/**
 * The f16 → f32 configuration the adapter lists with the most multiply-adds per matrix
 * operation (M·N·K), among those 'sgmat' takes: M and N of 8 or 16, K dividing its 32-wide
 * K step — NVIDIA's 16×16×16 over its 16×8×16, Intel's 8×16×16 over its 8×8×16.
 */
export function pickSubgroupMatrix(
  info: { subgroupMatrixConfigs?: readonly MatrixConfig[]; subgroupMaxSize?: number } | undefined,
  extension: string,
): SubgroupMatrix | null {
  const usable = (info?.subgroupMatrixConfigs ?? []).filter(
    (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && [8, 16].includes(c.M) && [8, 16].includes(c.N) && [8, 16, 32].includes(c.K),
  );
  const best = usable.reduce<MatrixConfig | null>((a, c) => (!a || c.M * c.N * c.K > a.M * a.N * a.K ? c : a), null);
  const subgroupSize = info?.subgroupMaxSize ?? 0;
  return best && subgroupSize >= 1 && subgroupSize <= 128 ? { M: best.M, N: best.N, K: best.K, subgroupSize, extension } : null;
}

export interface GpuOptions {
  profile?: boolean;
  /** Kernel variants: by adapter class (default), or forced (src/gpu/adapter-class.ts). */
  kernels?: KernelChoice;
  /** Ask for these optional features only if present (default: all three). */
  features?: Partial<GpuFeatures>;
}

/** One kernel launch. Binding 0 is the params uniform; bindings[i] goes to binding i + 1. */
export interface Dispatch {
  /** Name in profiles, e.g. 'matmul.f16'. */
  kernel: string;
  pipeline: PipelineKey;
  /** Uniform fields in struct order; `types` has one letter per field: u (u32), i (i32), f (f32). */
  params?: { values: number[]; types?: string };
  /** Storage buffers for bindings 1..n; null leaves a slot unused by this variant. */
  bindings: (Tensor | null)[];
  workgroups: [number, number?, number?];
  /** Shapes for errors and the profiler, e.g. 'M=600 N=1024 K=1024'. */
  shapes: string;
  flops?: number;
  bytes?: number;
  /** Runs on the matrix units (tensor cores): the profile's % of peak is of their peak. */
  tensorCores?: boolean;
}

const TRAIL = 8; // recent dispatches quoted in error messages
const MAX_UNIFORMS = 4096; // cached params buffers (16–32 bytes each) before the cache restarts
const MAX_BIND_GROUPS = 8192; // cached bind groups before the cache restarts
const MAX_POOL_BYTES = 512 * 2 ** 20; // freed buffers kept for reuse; past this they are destroyed
const MAX_STAGING = 16; // sizes of readback buffers kept for reuse
/** A pooled buffer up to this size is zeroed from the host (queue.writeBuffer) rather than made anew. */
const ZERO_WRITE_BYTES = 64 * 2 ** 10;
const ZEROS = new Uint8Array(ZERO_WRITE_BYTES);

export class Gpu {
  readonly pipelines: PipelineCache;
  readonly profiler?: Profiler;
  readonly limits: GPUSupportedLimits;
  /** Which variants every op picks: 'cpu' (software adapters) or 'gpu'. */
  readonly kernels: KernelClass;
  readonly kernelsForced: boolean;
  /** Subgroup matrices the device was created with (GPU-class kernels, f16 and subgroups present), or null. */
  readonly subgroupMatrix: SubgroupMatrix | null;
  /** Buffers and bind groups created so far (a steady decode step creates none of either). */
  readonly created = { buffers: 0, bindGroups: 0 };
  /**
   * Work recorded so far: dispatches, buffer copies, the compute passes the dispatches were
   * recorded into (consecutive dispatches share one until a copy or a submit ends it) and the
   * queue submissions.
   */
  readonly recorded = { dispatches: 0, copies: 0, passes: 0, submissions: 0 };
  /** Bytes in live tensors created through this context, and the peak (with the pool's). */
  allocated = 0;
  peakAllocated = 0;

  private encoder?: GPUCommandEncoder;
  /** The open compute pass of `encoder`, if any. */
  private pass?: GPUComputePassEncoder;
  /** Buffers the open encoder's commands use: `write` to one of them submits first (see there). */
  private pending = new Set<GPUBuffer>();
  private scopes: Promise<void>[] = [];
  /** The last dispatches, described only when an error quotes them. */
  private trail: Dispatch[] = [];
  private uniforms = new Map<string, GPUBuffer>();
  /** Each uniform buffer's content key, and the buffer each (pipeline, storage buffers) used last. */
  private uniformKeys = new Map<GPUBuffer, string>();
  private lastParams = new Map<string, GPUBuffer>();
  /** Uniform buffers to destroy, and tensor buffers to pool, once the open encoder is submitted. */
  private doomed: GPUBuffer[] = [];
  private freed: GPUBuffer[] = [];
  private released = new WeakSet<GPUBuffer>();
  /**
   * Freed tensor buffers by size, reused by `tensor(..., { fullyWritten: true })` so that a
   * decode step creates no buffers once the first step has run (bytes: `pooledBytes`).
   */
  private pool = new Map<number, Set<GPUBuffer>>();
  /** The buffer each tensor name got last: handed out again when it is free, so bind groups repeat. */
  private lastByName = new Map<string, GPUBuffer>();
  private pooledBytes = 0;
  /** Readback (MAP_READ) buffers by size, unmapped and idle. */
  private staging = new Map<number, GPUBuffer[]>();
  /** Buffers `tensor()` made (their usage is known); others, such as streamed weights, are destroyed when freed. */
  private own = new WeakSet<GPUBuffer>();
  /**
   * Each hand-out of a buffer, and the hand-out each tensor got: releasing a tensor whose
   * buffer has since been handed to another (a second release of a stale tensor) does nothing.
   */
  private leases = new WeakMap<object, number>();
  /** Bind groups by (pipeline, params buffer, storage buffers): the same every step. */
  private bindGroups = new Map<string, GPUBindGroup>();
  private ids = new WeakMap<object, number>();
  private nextId = 1;
  /** Pipelines dispatched at least once: a pipeline's first dispatch is profiled apart (it may include compilation). */
  private dispatched = new WeakSet<GPUComputePipeline>();
  private lost?: string;
  private uncaptured?: string;

  constructor(
    readonly device: GPUDevice,
    readonly features: GpuFeatures,
    readonly adapterName: string,
    readonly adapterClass: Classified,
    loadShader: ShaderLoader,
    opts: GpuOptions = {},
    subgroupMatrix: SubgroupMatrix | null = null,
  ) {
    this.limits = device.limits;
    this.kernels = kernelClass(adapterClass.adapterClass, opts.kernels);
    this.subgroupMatrix = subgroupMatrix;
    this.kernelsForced = (opts.kernels ?? 'auto') !== 'auto';
    this.pipelines = new PipelineCache(device, loadShader);
    if (opts.profile) this.profiler = new Profiler(device, features.timestamps);
    device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
    device.onuncapturederror = (e) => {
      this.uncaptured ??= e.error.message;
    };
  }

  /** Requests a device with every optional feature the adapter has (and no others). */
  static async fromAdapter(adapter: GPUAdapter, loadShader: ShaderLoader, opts: GpuOptions = {}): Promise<Gpu> {
    const info = adapter.info;
    const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
    const want = { f16: true, timestamps: true, subgroups: true, ...opts.features };
    const has = (f: GPUFeatureName) => adapter.features.has(f);
    const features: GpuFeatures = {
      f16: want.f16 && has('shader-f16'),
      timestamps: want.timestamps && has('timestamp-query'),
      subgroups: want.subgroups && has('subgroups' as GPUFeatureName),
    };
    const requiredFeatures: GPUFeatureName[] = [];
    if (features.f16) requiredFeatures.push('shader-f16');
    if (features.timestamps) requiredFeatures.push('timestamp-query');
    if (features.subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
    const classified = classifyAdapter({ info, isFallbackAdapter: (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter });
    // subgroup matrices only for GPU-class kernels: the 'sgmat' matmul is their only user
    let subgroupMatrix: SubgroupMatrix | null = null;
    const sgm = subgroupMatrixFeature((f) => has(f as GPUFeatureName));
    if (sgm && features.f16 && features.subgroups && kernelClass(classified.adapterClass, opts.kernels) === 'gpu') {
      subgroupMatrix = pickSubgroupMatrix(info as Parameters<typeof pickSubgroupMatrix>[0], sgm.extension);
      if (subgroupMatrix) requiredFeatures.push(sgm.feature as GPUFeatureName);
    }
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
    return new Gpu(device, features, name, classified, loadShader, opts, subgroupMatrix);
  }

  // ---- tensors -------------------------------------------------------------------------

  /**
   * A zeroed tensor; with `fullyWritten` (the op's kernel writes every element before
   * anything reads it) a pooled buffer of the same size is reused as it is, not zeroed.
   * A small tensor that is not fully written reuses one too, zeroed by a queue write (which
   * runs before the commands recorded after it, and after the submitted work that last used
   * the buffer: pooled buffers have none unsubmitted). So a decode step, once its buffers are
   * pooled, creates none: the same buffers come back each step and so do their bind groups.
   * Refuses sizes the device cannot bind.
   */
  tensor(shape: readonly number[], dtype: DType, name: string, opts: { fullyWritten?: boolean } = {}): Tensor {
    const size = byteSize(shape, dtype);
    const limit = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
    if (size > limit) {
      throw new GpuError(
        `tensor ${name} [${shape.join(', ')}] ${dtype} needs ${fmtBytes(size)}, over this device's storage-binding limit of ${fmtBytes(limit)}; ` +
          `it must be split (e.g. by rows) before it can be used here`,
      );
    }
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new GpuError(`tensor ${name}: bad shape [${shape.join(', ')}]`);
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    let buffer = opts.fullyWritten || bytes <= ZERO_WRITE_BYTES ? this.fromPool(bytes, name) : undefined;
    if (buffer) {
      this.released.delete(buffer);
      this.leases.set(buffer, (this.leases.get(buffer) ?? 0) + 1);
      if (!opts.fullyWritten) this.device.queue.writeBuffer(buffer, 0, ZEROS, 0, bytes);
    } else {
      buffer = this.device.createBuffer({ label: name, size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      this.created.buffers++;
      this.own.add(buffer);
    }
    if (this.lastByName.size >= MAX_BIND_GROUPS) this.lastByName.clear();
    this.lastByName.set(name, buffer);
    this.allocated += buffer.size;
    this.peakAllocated = Math.max(this.peakAllocated, this.allocated + this.pooledBytes);
    const t = new Tensor(buffer, shape, dtype, name);
    this.leases.set(t, this.leases.get(buffer) ?? 0);
    return t;
  }

  /** Uploads host data. For dtype 'f16' pass the raw half bits (Uint16Array). */
  upload(data: Float32Array | Int32Array | Uint32Array | Uint16Array, shape: readonly number[], name: string, dtype?: DType): Tensor {
    const dt: DType = dtype ?? (data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : data instanceof Uint16Array ? 'f16' : 'u32');
    if (data.length !== numel(shape)) throw new GpuError(`upload ${name}: ${data.length} values for shape [${shape.join(', ')}]`);
    const t = this.tensor(shape, dt, name, { fullyWritten: true }); // by the write below
    this.write(t, data);
    return t;
  }

  /**
   * Writes host data into a tensor. `queue.writeBuffer` runs before any command not yet
   * submitted, so when recorded work uses the tensor that work is submitted first: the write
   * lands after it, in the order it was asked for.
   */
  write(t: Tensor, data: ArrayBufferView, byteOffset = 0): void {
    if (this.pending.has(t.buffer)) this.flush();
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    this.device.queue.writeBuffer(t.buffer, byteOffset, bytes as Uint8Array<ArrayBuffer>);
  }

  /**
   * Frees tensors. Work already recorded may still read them, so their buffers go to the
   * pool (or are destroyed, past MAX_POOL_BYTES) only after the next submit: a later
   * submission that reuses one runs after every use recorded before (queue order), and no
   * `queue.writeBuffer` can reach it before the work that read it.
   */
  release(...ts: (Tensor | undefined)[]): void {
    for (const t of ts) {
      if (!t || this.released.has(t.buffer)) continue;
      const lease = this.leases.get(t);
      if (lease !== undefined && lease !== (this.leases.get(t.buffer) ?? 0)) continue; // stale: the buffer is another tensor's now
      this.released.add(t.buffer);
      this.allocated -= t.buffer.size;
      if (this.encoder) this.freed.push(t.buffer);
      else this.toPool(t.buffer);
    }
  }

  private toPool(b: GPUBuffer): void {
    if (!this.own.has(b) || this.pooledBytes + b.size > MAX_POOL_BYTES) return b.destroy();
    const free = this.pool.get(b.size) ?? new Set();
    free.add(b);
    this.pool.set(b.size, free);
    this.pooledBytes += b.size;
  }

  /**
   * A free buffer of `bytes`: the one a tensor of this name had last, when it is free (a
   * decode step's tensors get the buffers they had in the step before, so their bind groups
   * are cached), else the oldest.
   */
  private fromPool(bytes: number, name: string): GPUBuffer | undefined {
    const free = this.pool.get(bytes);
    if (!free?.size) return undefined;
    const last = this.lastByName.get(name);
    const b = last && free.has(last) ? last : free.values().next().value!;
    free.delete(b);
    this.pooledBytes -= bytes;
    return b;
  }

  /**
   * Copies `count` elements of `src` from element `srcAt` into `dst` at element `dstAt`:
   * splices rows, fills a KV cache. Packed f16 moves whole u32 words, so offsets and count must be
   * even there (and both tensors f16): that is how a fused weight is split into row blocks.
   */
  copy(src: Tensor, dst: Tensor, srcAt = 0, dstAt = 0, count = src.numel - srcAt): void {
    const half = src.dtype === 'f16' || dst.dtype === 'f16';
    if (half && (src.dtype !== dst.dtype || srcAt % 2 || dstAt % 2 || count % 2)) {
      throw new GpuError(`copy ${src}[${srcAt}:${srcAt + count}] → ${dst}[${dstAt}]: f16 copies need both tensors f16 and even offsets and count`);
    }
    if (srcAt + count > src.numel || dstAt + count > dst.numel || count < 0) {
      throw new GpuError(`copy ${src}[${srcAt}:${srcAt + count}] → ${dst}[${dstAt}:${dstAt + count}]: out of range`);
    }
    const size = half ? 2 : 4;
    if (!count) return;
    this.pending.add(src.buffer).add(dst.buffer);
    this.recorded.copies++;
    this.copyEncoder().copyBufferToBuffer(src.buffer, srcAt * size, dst.buffer, dstAt * size, count * size);
  }

  /** Reads a tensor back (f16 is decoded to f32). */
  async read(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array> {
    return (await this.readAll([t]))[0];
  }

  /**
   * Reads tensors back in one round trip: one staging buffer (reused from call to call), one
   * submission, one map. A decode step's token and its scores come back together.
   */
  async readAll(ts: readonly Tensor[]): Promise<(Float32Array | Int32Array | Uint32Array)[]> {
    const at: number[] = [];
    let size = 0;
    for (const t of ts) {
      at.push(size);
      size += Math.ceil(t.byteSize / 4) * 4;
    }
    const bytes = Math.max(16, Math.ceil(size / 256) * 256);
    const staging = this.staging.get(bytes)?.pop() ?? this.device.createBuffer({ label: 'readback', size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.copyEncoder();
    ts.forEach((t, i) => {
      if (t.byteSize) enc.copyBufferToBuffer(t.buffer, 0, staging, at[i], Math.ceil(t.byteSize / 4) * 4);
    });
    try {
      await this.settle(() => staging.mapAsync(GPUMapMode.READ, 0, Math.max(4, size)));
    } catch (e) {
      staging.destroy();
      throw e;
    }
    const raw = staging.getMappedRange(0, Math.max(4, size)).slice(0);
    staging.unmap();
    const idle = this.staging.get(bytes) ?? [];
    if (idle.length < 2 && (this.staging.has(bytes) || this.staging.size < MAX_STAGING)) this.staging.set(bytes, [...idle, staging]);
    else staging.destroy();
    return ts.map((t, i) => {
      switch (t.dtype) {
        case 'f32':
          return new Float32Array(raw, at[i], t.numel);
        case 'i32':
          return new Int32Array(raw, at[i], t.numel);
        case 'u32':
          return new Uint32Array(raw, at[i], t.numel);
        case 'f16':
          return fromF16(new Uint16Array(raw, at[i], t.numel));
      }
    });
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    const a = await this.read(t);
    return a instanceof Float32Array ? a : Float32Array.from(a);
  }

  // ---- dispatch ------------------------------------------------------------------------

  /**
   * Records one dispatch into the open encoder. Its errors are caught by the submission's
   * error scope (opened with the encoder, closed at `flush`) and quote the last dispatches.
   */
  dispatch(d: Dispatch): void {
    this.checkAlive();
    if (this.profiler?.full) this.flush();
    const [x, y = 1, z = 1] = d.workgroups;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) throw new GpuError(`${describe(d)}: workgroup grid ${x}×${y}×${z} exceeds the device limit ${maxDim} per dimension`);
    if (x * y * z === 0) return;
    this.trail.push(d);
    if (this.trail.length > TRAIL) this.trail.shift();

    const enc = this.enc(); // first: its error scope catches the bind group's errors
    const pipeline = this.pipelines.get(d.pipeline);
    const bindGroup = this.bindGroup(pipeline, d);
    const first = !this.dispatched.has(pipeline);
    this.dispatched.add(pipeline);
    this.recorded.dispatches++;
    for (const t of d.bindings) if (t) this.pending.add(t.buffer);
    if (this.profiler) {
      // timed per dispatch: a pass of its own (its timestamps), or a submission of its own (host clock)
      const timestampWrites = this.profiler.record({ kernel: d.kernel, shapes: d.shapes, flops: d.flops ?? 0, bytes: d.bytes ?? 0, first, tensorCores: d.tensorCores });
      this.endPass();
      const pass = enc.beginComputePass({ timestampWrites });
      this.recorded.passes++;
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
      if (!this.profiler.timestamps) this.flush();
      return;
    }
    // one pass for consecutive dispatches: storage writes of one dispatch are visible to the next
    if (!this.pass) {
      this.pass = enc.beginComputePass();
      this.recorded.passes++;
    }
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
  }

  /** Splits n workgroups over x and y so neither exceeds the per-dimension limit. */
  grid(n: number): [number, number] {
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (n <= maxDim) return [n, 1];
    const y = Math.ceil(n / maxDim);
    return [Math.ceil(n / y), y];
  }

  /** Submits everything recorded so far (does not wait) and closes the submission's error scope. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const enc = this.encoder;
    this.encoder = undefined;
    this.recorded.submissions++;
    this.pending.clear();
    const done = this.profiler?.beforeSubmit(enc);
    this.device.pushErrorScope('out-of-memory');
    this.device.queue.submit([enc.finish()]);
    for (const b of this.doomed) b.destroy();
    this.doomed = [];
    for (const b of this.freed) this.toPool(b);
    this.freed = [];
    const recent = this.trail.slice();
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope(); // opened by enc()
    this.scopes.push(
      Promise.all([validation, oom]).then(([v, o]) => {
        const e = v ?? o;
        if (e) throw new GpuError(`${o && !v ? 'out of GPU memory' : 'GPU validation error'}: ${e.message}\nin the submission of these dispatches (the last ${TRAIL}):\n  ${recent.map(describe).join('\n  ')}`);
      }),
    );
    done?.();
  }

  /** Submits and waits for the GPU; throws the first error any recorded work raised. */
  async sync(): Promise<void> {
    await this.settle(() => this.device.queue.onSubmittedWorkDone());
  }

  /**
   * Submits, then waits for `wait()` (called after the submit: the queue's completion, or a
   * readback's map, which completes after all submitted work) and every open error check.
   */
  private async settle(wait: () => Promise<unknown>): Promise<void> {
    this.flush();
    const scopes = this.scopes;
    this.scopes = [];
    // all settled, so that after the first error the others are not left unhandled; the
    // errors that name a kernel first
    const [done, compile, ...rest] = await Promise.allSettled([wait(), this.pipelines.check(), ...scopes]);
    const failed = [compile, ...rest, done].find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await this.profiler?.settle();
    this.checkAlive();
  }

  destroy(): void {
    for (const b of this.uniforms.values()) b.destroy();
    this.uniforms.clear();
    for (const list of [...this.pool.values(), ...this.staging.values()]) for (const b of list) b.destroy();
    this.lastByName.clear();
    this.lastParams.clear();
    this.uniformKeys.clear();
    this.pool.clear();
    this.staging.clear();
    this.bindGroups.clear();
    this.device.destroy();
  }

  // ---- internals -----------------------------------------------------------------------

  /** The open encoder; a new one opens the submission's validation error scope. */
  private enc(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  /** The open encoder with no pass open, for copies (which cannot be recorded inside a pass). */
  private copyEncoder(): GPUCommandEncoder {
    this.endPass();
    return this.enc();
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  private id(o: object): number {
    let i = this.ids.get(o);
    if (i === undefined) this.ids.set(o, (i = this.nextId++));
    return i;
  }

  /** The dispatch's bind group, made once per (pipeline, storage buffers, params buffer). */
  private bindGroup(pipeline: GPUComputePipeline, d: Dispatch): GPUBindGroup {
    let role = `${this.id(pipeline)}:`;
    for (const t of d.bindings) role += t ? `${this.id(t.buffer)},` : '0,';
    const params = d.params ? this.uniform(d.params.values, d.params.types, role) : undefined;
    if (params) this.pending.add(params);
    const key = `${role}${params ? this.id(params) : 0}`;
    let g = this.bindGroups.get(key);
    if (g) return g;
    if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
    const entries: GPUBindGroupEntry[] = [];
    if (params) entries.push({ binding: 0, resource: { buffer: params } });
    d.bindings.forEach((t, i) => {
      if (t) entries.push({ binding: i + 1, resource: { buffer: t.buffer } });
    });
    g = this.device.createBindGroup({ label: d.kernel, layout: pipeline.getBindGroupLayout(0), entries });
    this.created.bindGroups++;
    this.bindGroups.set(key, g);
    return g;
  }

  /**
   * The params buffer of a dispatch, cached by content: most are the same every layer. New
   * content (a decode step's positions) is written into the buffer the same pipeline and
   * storage buffers (`role`) used last, when no unsubmitted work uses it: the step's bind
   * groups are then the last step's. Otherwise a new buffer.
   */
  private uniform(values: number[], types: string | undefined, role: string): GPUBuffer {
    const key = (types ?? '') + ':' + values.join(',');
    let b = this.uniforms.get(key);
    if (!b) {
      const data = new ArrayBuffer(Math.max(16, Math.ceil((values.length * 4) / 16) * 16));
      const view = new DataView(data);
      values.forEach((v, i) => {
        const t = types?.[i] ?? 'u';
        if (t === 'f') view.setFloat32(i * 4, v, true);
        else if (t === 'i') view.setInt32(i * 4, v, true);
        else {
          if (!(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) throw new GpuError(`uniform field ${i} = ${v} is not a u32`);
          view.setUint32(i * 4, v, true);
        }
      });
      const last = this.lastParams.get(role);
      if (last && last.size === data.byteLength && !this.pending.has(last)) {
        this.uniforms.delete(this.uniformKeys.get(last)!);
        b = last;
      } else {
        if (this.uniforms.size >= MAX_UNIFORMS) {
          // start over rather than grow; recorded work may still use the old buffers, so they go after the next submit
          for (const old of this.uniforms.values()) this.doomed.push(old);
          this.uniforms.clear();
          this.uniformKeys.clear();
          this.lastParams.clear();
        }
        b = this.device.createBuffer({ label: `params ${key}`, size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      }
      this.device.queue.writeBuffer(b, 0, data);
      this.uniforms.set(key, b);
      this.uniformKeys.set(b, key);
    }
    if (this.lastParams.size >= MAX_BIND_GROUPS) this.lastParams.clear();
    this.lastParams.set(role, b);
    return b;
  }

  private checkAlive(): void {
    if (this.lost !== undefined) throw new GpuError(`GPU device lost (${this.lost}); last dispatches:\n  ${this.trail.map(describe).join('\n  ')}`);
    if (this.uncaptured !== undefined) throw new GpuError(`GPU error: ${this.uncaptured}; last dispatches:\n  ${this.trail.map(describe).join('\n  ')}`);
  }
}

/** A dispatch for error messages: kernel, shapes and buffers. */
function describe(d: Dispatch): string {
  return `${d.kernel} (${d.shapes}) buffers ${d.bindings.filter(Boolean).join(' ')}`;
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
