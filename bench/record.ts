/**
 * One benchmark result, as `npm run bench -- --json FILE` writes it (one record per case):
 *   {"case": "matmul", "shape": [M, N, K], "dtype": "f32", "unit": "GFLOP/s",
 *    "ours": 31.2, "baseline": 98.5, "ratio": 0.317}
 * `ours` and `baseline` are measured in the same run on the same machine; `ratio` =
 * ours / baseline, so a ratio of 1 means parity: for rates (GFLOP/s, MB/s) higher is
 * better. A ratio of times says so in `ratio_name`, e.g. "time-ratio-vs-hf" = phaselens
 * time / HF transformers time (lower is better).
 * Other benchmarks (bench/load.ts) produce the same shape.
 */
export interface BenchRecord {
  /** Which benchmark: 'matmul', 'attention', 'safetensors-stream', … */
  case: string;
  /** The sizes the case is named by; the case's docs say their order. */
  shape: number[];
  /** Element type of the operands that vary ('f32'; 'f16' = f16 weights, f32 activations). */
  dtype: string;
  unit: string;
  ours: number;
  baseline: number;
  ratio: number;
  /** What the ratio is when it is not a rate ratio (absent: ours / baseline of rates, higher is better): "time-ratio-vs-hf", … (lower is better). */
  ratio_name?: string;
  /** Free text: what the baseline is, kernel variant, caveats. */
  note?: string;
}

export function record(r: Omit<BenchRecord, 'ratio'>): BenchRecord {
  const { note, ...rest } = r;
  return { ...rest, ratio: r.baseline > 0 ? r.ours / r.baseline : NaN, ...(note === undefined ? {} : { note }) };
}

/** JSON text with one record per line. */
export function recordsJson(records: BenchRecord[]): string {
  return '[\n' + records.map((r) => '  ' + JSON.stringify(r)).join(',\n') + '\n]\n';
}

const fmt = (v: number) => (!Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));

/** The table `npm run bench` prints: case, shape, dtype, unit, ours, baseline, ratio, what the ratio is (and notes). */
export function formatRecords(records: BenchRecord[]): string {
  const head = ['case', 'shape', 'dtype', 'unit', 'ours', 'baseline', 'ratio', 'ratio is', 'note'];
  const rows = records.map((r) => [r.case, `[${r.shape.join(', ')}]`, r.dtype, r.unit, fmt(r.ours), fmt(r.baseline), fmt(r.ratio), r.ratio_name ?? '', r.note ?? '']);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const right = new Set([4, 5, 6]);
  const line = (row: string[]) =>
    row
      .map((c, i) => (i === row.length - 1 ? c : right.has(i) ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  return [line(head), width.map((n, i) => (i === head.length - 1 ? '----' : '-'.repeat(n))).join('  '), ...rows.map(line)].join('\n');
}
