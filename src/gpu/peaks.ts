/**
 * Peak rates of common GPUs, for the profile's "% of peak" columns: FP32 TFLOP/s (the
 * vector units: what every kernel but 'sgmat' computes with), dense FP16 TFLOP/s of the
 * matrix units with FP32 accumulation (tensor cores, matrix cores — what 'sgmat' runs on;
 * no sparsity), and memory bandwidth in GB/s. Matched on the adapter description;
 * `--peak-tflops` / `--peak-tensor-tflops` / `--peak-gbs` give or override them (software
 * adapters have no entry).
 *
 * Sources (vendor data sheets; the "with sparsity" figures are halved to dense):
 *   H100 SXM / PCIe, H200, GH200 — NVIDIA H100 Tensor Core GPU data sheet; H200 data sheet
 *     (FP16 Tensor Core 1,979 / 1,513 TFLOPS with sparsity; FP32 67 / 51)
 *   A100 — NVIDIA A100 Tensor Core GPU data sheet (FP16 Tensor Core 312, FP32 19.5)
 *   L40S, L4, A10, T4, V100 — their NVIDIA product data sheets (FP16 Tensor Core)
 *   RTX 4090 / 3090 — NVIDIA Ada / Ampere GA102 architecture whitepapers, "FP16 Tensor
 *     TFLOPS with FP32 Accumulate" (half the FP16-accumulate rate on GeForce parts)
 *   MI300X, RX 7900 XTX — AMD product specifications (peak FP16 matrix, dense)
 *   Apple M1 / M2 families — Apple's announcements (GPU TFLOPS, unified-memory bandwidth);
 *     their GPUs have no separate matrix units (simdgroup_matrix runs on the ALUs at the
 *     FP32 rate), so the tensor peak is the FP32 one. M3 / M4: Apple gives no TFLOPS.
 *   Units: the same data sheets and whitepapers (SMs: H100 SXM 132, PCIe 114, A100 108, L40S
 *     142, RTX 4090 128, …; CUs: MI300X 304, RX 7900 XTX 96; Apple: GPU cores).
 */
export interface Peak {
  name: string;
  tflops: number;
  /** Dense FP16 matrix-unit TFLOP/s with FP32 accumulation. */
  tensorTflops: number;
  gbs: number;
  /** Streaming multiprocessors (NVIDIA), compute units (AMD), GPU cores (Apple): how many
   * workgroups run at once, at one per unit — the matmul's split of K keys on it. */
  units: number;
}

const TABLE: [RegExp, Peak][] = [
  [/\bH200\b/i, { name: 'NVIDIA H200', tflops: 67, tensorTflops: 989, gbs: 4800, units: 132 }],
  [/\bH100\b.*\bPCIe\b/i, { name: 'NVIDIA H100 PCIe', tflops: 51, tensorTflops: 756, gbs: 2000, units: 114 }],
  [/\bH100\b/i, { name: 'NVIDIA H100 SXM', tflops: 67, tensorTflops: 989, gbs: 3350, units: 132 }],
  [/\bGH200\b/i, { name: 'NVIDIA GH200', tflops: 67, tensorTflops: 989, gbs: 4000, units: 132 }],
  [/\bA100\b.*\b40GB\b/i, { name: 'NVIDIA A100 40GB', tflops: 19.5, tensorTflops: 312, gbs: 1555, units: 108 }],
  [/\bA100\b/i, { name: 'NVIDIA A100 80GB', tflops: 19.5, tensorTflops: 312, gbs: 2039, units: 108 }],
  [/\bL40S\b/i, { name: 'NVIDIA L40S', tflops: 91.6, tensorTflops: 362, gbs: 864, units: 142 }],
  [/\bL4\b/i, { name: 'NVIDIA L4', tflops: 30.3, tensorTflops: 121, gbs: 300, units: 58 }],
  [/\bA10\b/i, { name: 'NVIDIA A10', tflops: 31.2, tensorTflops: 125, gbs: 600, units: 72 }],
  [/\bV100\b/i, { name: 'NVIDIA V100', tflops: 15.7, tensorTflops: 125, gbs: 900, units: 80 }],
  [/\bT4\b/i, { name: 'NVIDIA T4', tflops: 8.1, tensorTflops: 65, gbs: 320, units: 40 }],
  [/RTX 4090/i, { name: 'NVIDIA GeForce RTX 4090', tflops: 82.6, tensorTflops: 165.2, gbs: 1008, units: 128 }],
  [/RTX 3090/i, { name: 'NVIDIA GeForce RTX 3090', tflops: 35.6, tensorTflops: 35.6, gbs: 936, units: 82 }],
  [/\bMI300X\b/i, { name: 'AMD Instinct MI300X', tflops: 163.4, tensorTflops: 1307.4, gbs: 5300, units: 304 }],
  [/RX 7900 XTX/i, { name: 'AMD Radeon RX 7900 XTX', tflops: 61.4, tensorTflops: 122.8, gbs: 960, units: 96 }],
  [/\bM1 Ultra\b/i, { name: 'Apple M1 Ultra (64-core GPU)', tflops: 21, tensorTflops: 21, gbs: 800, units: 64 }],
  [/\bM1 Max\b/i, { name: 'Apple M1 Max (32-core GPU)', tflops: 10.4, tensorTflops: 10.4, gbs: 400, units: 32 }],
  [/\bM1 Pro\b/i, { name: 'Apple M1 Pro (16-core GPU)', tflops: 5.2, tensorTflops: 5.2, gbs: 200, units: 16 }],
  [/\bM1\b/i, { name: 'Apple M1 (8-core GPU)', tflops: 2.6, tensorTflops: 2.6, gbs: 68.25, units: 8 }],
  [/\bM2 Ultra\b/i, { name: 'Apple M2 Ultra (76-core GPU)', tflops: 27.2, tensorTflops: 27.2, gbs: 800, units: 76 }],
  [/\bM2 Max\b/i, { name: 'Apple M2 Max (38-core GPU)', tflops: 13.6, tensorTflops: 13.6, gbs: 400, units: 38 }],
  [/\bM2 Pro\b/i, { name: 'Apple M2 Pro (19-core GPU)', tflops: 6.8, tensorTflops: 6.8, gbs: 200, units: 19 }],
  [/\bM2\b/i, { name: 'Apple M2 (10-core GPU)', tflops: 3.6, tensorTflops: 3.6, gbs: 100, units: 10 }],
];

/** The peak of this adapter: the overrides where given, else the table's entry; null when neither is known. */
export function adapterPeak(adapterName: string, override: { tflops?: number; tensorTflops?: number; gbs?: number } = {}): Peak | null {
  const known = TABLE.find(([re]) => re.test(adapterName))?.[1];
  if (override.tflops === undefined && override.tensorTflops === undefined && override.gbs === undefined) return known ?? null;
  return {
    name: known ? `${known.name}, overridden` : 'given',
    tflops: override.tflops ?? known?.tflops ?? NaN,
    tensorTflops: override.tensorTflops ?? known?.tensorTflops ?? NaN,
    gbs: override.gbs ?? known?.gbs ?? NaN,
    units: known?.units ?? NaN,
  };
}
