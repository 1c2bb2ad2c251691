/**
 * Per-dispatch GPU timing with `timestamp-query`: every compute pass writes a begin and
 * an end timestamp into a query set, resolved at each submit and read back at `sync()`.
 * Without the feature only whole submissions can be timed (host clock, submit → done), so
 * the runtime submits each dispatch on its own while profiling: a kernel's time is then
 * done(i) − max(submit(i), done(i−1)), which includes the driver's per-submit overhead.
 *
 * Compilation is kept out of kernel times: the host time spent creating pipelines is its
 * own line, and the first dispatch of each pipeline — where drivers that compile lazily
 * (lavapipe, some GPU drivers) do their work — is counted apart ('first ms') and left out
 * of the steady-state means and rates.
 *
 * `table()` prints calls / steady total / mean / achieved GFLOP/s and GB/s per kernel,
 * from the FLOP and byte counts each op declares; `trace()` is Chrome trace-event JSON
 * that opens in Perfetto or chrome://tracing (steady dispatches, first dispatches, and
 * host submissions on three tracks).
 */
import type { Peak } from './peaks.ts';

export interface KernelRecord {
  kernel: string;
  shapes: string;
  flops: number;
  bytes: number;
  /** The first dispatch of its pipeline (may include compilation). */
  first?: boolean;
  /** Runs on the matrix units (subgroup matrices): % of peak is of the tensor peak. */
  tensorCores?: boolean;
  /** GPU timestamps in ns (timestamp-query only). */
  begin?: number;
  end?: number;
}

interface Submission {
  start: number; // ms, host clock
  end?: number;
  dispatches: number;
}

const SLOTS = 2048; // queries per set: 1024 dispatches between submits

export class Profiler {
  readonly records: KernelRecord[] = [];
  readonly submissions: Submission[] = [];
  private querySet?: GPUQuerySet;
  private slotRecords: KernelRecord[] = [];
  private pending: Promise<void>[] = [];
  private lastEnd = 0;

  constructor(
    private device: GPUDevice,
    readonly timestamps: boolean,
  ) {
    if (timestamps) this.querySet = device.createQuerySet({ type: 'timestamp', count: SLOTS, label: 'profiler' });
  }

  get full(): boolean {
    return this.slotRecords.length * 2 >= SLOTS;
  }

  /** Registers a dispatch; returns the pass's timestampWrites when timing per dispatch. */
  record(rec: KernelRecord): GPUComputePassTimestampWrites | undefined {
    this.records.push(rec);
    const i = this.slotRecords.push(rec) - 1;
    if (!this.querySet) return undefined;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Encodes the query resolve for the dispatches recorded since the last submit. */
  beforeSubmit(encoder: GPUCommandEncoder): () => void {
    const recs = this.slotRecords;
    this.slotRecords = [];
    const sub: Submission = { start: performance.now(), dispatches: recs.length };
    this.submissions.push(sub);
    let staging: GPUBuffer | undefined;
    if (this.querySet && recs.length) {
      const bytes = recs.length * 16;
      const resolve = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      encoder.resolveQuerySet(this.querySet, 0, recs.length * 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
      const r = resolve;
      this.pending.push(this.device.queue.onSubmittedWorkDone().then(() => r.destroy()));
    }
    return () => {
      this.pending.push(
        this.device.queue.onSubmittedWorkDone().then(async () => {
          sub.end = performance.now();
          if (!this.querySet) {
            // host timing: this submission ran after both its submit and the previous one's end
            const begin = Math.max(sub.start, this.lastEnd);
            for (const r of recs) {
              r.begin = begin * 1e6;
              r.end = sub.end * 1e6;
            }
            this.lastEnd = sub.end;
          }
          if (!staging) return;
          await staging.mapAsync(GPUMapMode.READ);
          const t = new BigUint64Array(staging.getMappedRange());
          recs.forEach((r, i) => {
            r.begin = Number(t[2 * i]);
            r.end = Number(t[2 * i + 1]);
          });
          staging.unmap();
          staging.destroy();
        }),
      );
    };
  }

  async settle(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    await Promise.all(p);
  }

  /**
   * One row per kernel: every call, and over the steady ones (not a pipeline's first
   * dispatch): their count, total ms, GFLOP/s and GB/s; `firstMs` is the first dispatches' time.
   */
  summary(): { kernel: string; calls: number; steadyCalls: number; ms: number; gflops: number; gbps: number; firstMs: number; tensorCores: boolean }[] {
    const by = new Map<string, { calls: number; steady: number; ns: number; flops: number; bytes: number; firstNs: number; tensorCores: boolean }>();
    for (const r of this.records) {
      const s = by.get(r.kernel) ?? { calls: 0, steady: 0, ns: 0, flops: 0, bytes: 0, firstNs: 0, tensorCores: !!r.tensorCores };
      s.calls++;
      const ns = r.begin !== undefined && r.end !== undefined ? Math.max(0, r.end - r.begin) : 0;
      if (r.first) s.firstNs += ns;
      else {
        s.steady++;
        s.flops += r.flops;
        s.bytes += r.bytes;
        s.ns += ns;
      }
      by.set(r.kernel, s);
    }
    return [...by.entries()]
      .map(([kernel, s]) => ({
        kernel,
        calls: s.calls,
        steadyCalls: s.steady,
        ms: s.ns / 1e6,
        gflops: s.ns ? s.flops / s.ns : 0,
        gbps: s.ns ? s.bytes / s.ns : 0,
        firstMs: s.firstNs / 1e6,
        tensorCores: s.tensorCores,
      }))
      .sort((a, b) => b.ms - a.ms || b.calls - a.calls);
  }

  /**
   * The per-kernel table; `pipelines` is the host's pipeline-creation count and time
   * (PipelineCache.created); with the adapter's `peak` (src/gpu/peaks.ts) each kernel's
   * rates are also given as % of it.
   */
  table(pipelines?: { count: number; ms: number }, peak?: Peak | null): string {
    const rows = this.summary();
    const pct = (v: number, of: number) => (v && Number.isFinite(of) ? ((100 * v) / of).toFixed(1) : '-');
    const head = ['kernel', 'calls', 'steady ms', 'mean µs', 'GFLOP/s', 'GB/s', 'first ms', ...(peak ? ['% FLOP peak', '% BW peak'] : [])];
    const body = rows.map((r) => [
      r.kernel,
      String(r.calls),
      r.ms.toFixed(3),
      r.steadyCalls ? ((r.ms * 1000) / r.steadyCalls).toFixed(1) : '-',
      r.gflops ? r.gflops.toFixed(2) : '-',
      r.gbps ? r.gbps.toFixed(2) : '-',
      r.firstMs.toFixed(3),
      ...(peak ? [pct(r.gflops, (r.tensorCores ? peak.tensorTflops : peak.tflops) * 1000) + (r.tensorCores ? ' (tensor)' : ''), pct(r.gbps, peak.gbs)] : []),
    ]);
    const subMs = unionMs(this.submissions);
    const gpuMs = rows.reduce((a, r) => a + r.ms, 0);
    const firstMs = rows.reduce((a, r) => a + r.firstMs, 0);
    const foot = [
      this.timestamps
        ? `steady GPU time ${gpuMs.toFixed(3)} ms; first dispatches of each pipeline ${firstMs.toFixed(3)} ms (may include compilation; not in the means and rates); ${this.records.length} dispatches, ${this.submissions.length} submissions (${subMs.toFixed(1)} ms host wall: submit to done, overlaps counted once)`
        : `timestamp-query is not available on this adapter: timed whole submissions on the host clock, ` +
          `one dispatch per submission: ${subMs.toFixed(1)} ms for ${this.records.length} dispatches (submit to done, overlaps counted once; includes per-submit overhead)`,
    ];
    if (peak) {
      // a peak given by flags may lack the matrix-unit figure: then tensor-core kernels show no %
      const tensor = Number.isFinite(peak.tensorTflops) ? `, ${peak.tensorTflops} TFLOP/s FP16 on the matrix units (the % of kernels marked "(tensor)")` : '';
      foot.push(`peak of ${peak.name}: ${peak.tflops} TFLOP/s FP32${tensor}, ${peak.gbs} GB/s`);
    }
    if (pipelines) foot.push(`pipeline creation on the host: ${pipelines.count} pipelines in ${pipelines.ms.toFixed(1)} ms (not in any kernel's time)`);
    return formatTable(head, body) + '\n' + foot.join('\n');
  }

  /** Chrome trace-event JSON (Perfetto / chrome://tracing). */
  trace(): object {
    const events: object[] = [];
    const timed = this.records.filter((r) => r.begin !== undefined);
    const t0 = timed.length ? Math.min(...timed.map((r) => r.begin!)) : 0;
    for (const r of timed) {
      events.push({
        name: r.kernel,
        cat: 'gpu',
        ph: 'X',
        pid: 1,
        tid: r.first ? 3 : 1,
        ts: (r.begin! - t0) / 1000,
        dur: Math.max(0, r.end! - r.begin!) / 1000,
        args: { shapes: r.shapes, flops: r.flops, bytes: r.bytes },
      });
    }
    const s0 = this.submissions[0]?.start ?? 0;
    this.submissions.forEach((s, i) =>
      events.push({
        name: `submit ${i}`,
        cat: 'host',
        ph: 'X',
        pid: 1,
        tid: 2,
        ts: (s.start - s0) * 1000,
        dur: ((s.end ?? s.start) - s.start) * 1000,
        args: { dispatches: s.dispatches },
      }),
    );
    const track = (tid: number, name: string) => ({ name: 'thread_name', ph: 'M', pid: 1, tid, args: { name } });
    events.push(track(1, 'GPU dispatches (steady)'), track(2, 'host submissions'), track(3, "GPU: each pipeline's first dispatch"));
    return { traceEvents: events, displayTimeUnit: 'ms' };
  }
}

/**
 * Total length of the union of [start, end] intervals: submissions overlap (several are in
 * flight and each ends when the queue drains), so their sum would count the same time again.
 */
export function unionMs(intervals: readonly { start: number; end?: number }[]): number {
  const sorted = intervals.map((s) => [s.start, s.end ?? s.start]).sort((a, b) => a[0] - b[0]);
  let total = 0;
  let runEnd = -Infinity;
  for (const [start, end] of sorted) {
    if (end <= runEnd) continue;
    total += end - Math.max(start, runEnd);
    runEnd = end;
  }
  return total;
}

export function formatTable(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
