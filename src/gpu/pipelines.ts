/**
 * Compute pipelines, compiled once per { shader, defines, constants } key.
 *
 * Shader modules are created synchronously so model code can record dispatches without
 * awaiting; their compilation messages are checked at the next `sync()`, where an error
 * is reported against the original .wgsl file and line.
 */
import { GpuError } from './errors.ts';
import { expandWgsl, type Defines, type ShaderLoader } from './wgsl.ts';

export interface PipelineKey {
  shader: string;
  defines?: Defines;
  /** WGSL `override` constants, e.g. the workgroup size. */
  constants?: Record<string, number>;
}

export class PipelineCache {
  /** Pipelines created so far and the host time that took (shader module + pipeline). */
  readonly created = { count: 0, ms: 0 };
  /** Compiler warnings so far ("file:line:col: message (defines …)"); the compile test requires none. */
  readonly warnings: string[] = [];
  private cache = new Map<string, GPUComputePipeline>();
  /** The same pipelines by shader, found by comparing defines and constants: no key string per dispatch. */
  private byShader = new Map<string, { key: PipelineKey; pipeline: GPUComputePipeline }[]>();
  private checks: Promise<void>[] = [];

  constructor(
    private device: GPUDevice,
    private load: ShaderLoader,
  ) {}

  get(key: PipelineKey): GPUComputePipeline {
    const seen = this.byShader.get(key.shader);
    if (seen) for (const e of seen) if (sameRecord(e.key.defines, key.defines) && sameRecord(e.key.constants, key.constants)) return e.pipeline;
    const p = this.create(key);
    this.byShader.set(key.shader, [...(seen ?? []), { key: { shader: key.shader, defines: { ...key.defines }, constants: { ...key.constants } }, pipeline: p }]);
    return p;
  }

  private create(key: PipelineKey): GPUComputePipeline {
    const id = JSON.stringify([key.shader, sorted(key.defines), sorted(key.constants)]);
    let p = this.cache.get(id);
    if (p) return p;
    const t0 = performance.now();
    const module = this.module(key);
    p = this.device.createComputePipeline({
      label: module.label,
      layout: 'auto',
      compute: { module, entryPoint: 'main', constants: key.constants },
    });
    this.cache.set(id, p);
    this.created.count++;
    this.created.ms += performance.now() - t0;
    return p;
  }

  /**
   * The shader module alone; its messages are checked at the next `check()` like a
   * pipeline's. The compile test uses it for variants whose workgroup exceeds the test
   * device's limits (they are for GPUs with more).
   */
  module(key: PipelineKey): GPUShaderModule {
    const { code, origin } = expandWgsl(key.shader, this.load, key.defines);
    const module = this.device.createShaderModule({ label: `${key.shader} ${JSON.stringify(key.defines ?? {})}`, code });
    this.checks.push(
      module.getCompilationInfo().then((info) => {
        const at = (m: GPUCompilationMessage) => `${origin[m.lineNum - 1] ?? `${key.shader}:?`}:${m.linePos}: ${m.message}`;
        for (const m of info.messages) if (m.type === 'warning') this.warnings.push(`${at(m)} (defines ${JSON.stringify(key.defines ?? {})})`);
        const errors = info.messages.filter((m) => m.type === 'error');
        if (!errors.length) return;
        throw new GpuError(`WGSL compile error in ${key.shader} (defines ${JSON.stringify(key.defines ?? {})}):\n${errors.map(at).join('\n')}`);
      }),
    );
    return module;
  }

  /** Throws the first compile error of pipelines created since the last call. */
  async check(): Promise<void> {
    const checks = this.checks;
    this.checks = [];
    const failed = (await Promise.allSettled(checks)).find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/** Same keys and values; an absent record equals an empty one. */
function sameRecord(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): boolean {
  let n = 0;
  for (const k in a) {
    if (a[k] !== b?.[k]) return false;
    n++;
  }
  return n === (b ? Object.keys(b).length : 0);
}

function sorted(o: Record<string, unknown> | undefined): [string, unknown][] {
  return Object.entries(o ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
}
