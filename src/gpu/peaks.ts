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
 */
export interface Peak {
  name: string;
  tflops: number;
  /** Dense FP16 matrix-unit TFLOP/s with FP32 accumulation. */
  tensorTflops: number;
  gbs: number;
}

const TABLE: [RegExp, Peak][] = [
  [/\bH200\b/i, { name: 'NVIDIA H200', tflops: 67, tensorTflops: 989, gbs: 4800 }],
  [/\bH100\b.*\bPCIe\b/i, { name: 'NVIDIA H100 PCIe', tflops: 51, tensorTflops: 756, gbs: 2000 }],
  [/\bH100\b/i, { name: 'NVIDIA H100 SXM', tflops: 67, tensorTflops: 989, gbs: 3350 }],
  [/\bGH200\b/i, { name: 'NVIDIA GH200', tflops: 67, tensorTflops: 989, gbs: 4000 }],
  [/\bA100\b.*\b40GB\b/i, { name: 'NVIDIA A100 40GB', tflops: 19.5, tensorTflops: 312, gbs: 1555 }],
  [/\bA100\b/i, { name: 'NVIDIA A100 80GB', tflops: 19.5, tensorTflops: 312, gbs: 2039 }],
  [/\bL40S\b/i, { name: 'NVIDIA L40S', tflops: 91.6, tensorTflops: 362, gbs: 864 }],
  [/\bL4\b/i, { name: 'NVIDIA L4', tflops: 30.3, tensorTflops: 121, gbs: 300 }],
  [/\bA10\b/i, { name: 'NVIDIA A10', tflops: 31.2, tensorTflops: 125, gbs: 600 }],
  [/\bV100\b/i, { name: 'NVIDIA V100', tflops: 15.7, tensorTflops: 125, gbs: 900 }],
  [/\bT4\b/i, { name: 'NVIDIA T4', tflops: 8.1, tensorTflops: 65, gbs: 320 }],
  [/RTX 4090/i, { name: 'NVIDIA GeForce RTX 4090', tflops: 82.6, tensorTflops: 165.2, gbs: 1008 }],
  [/RTX 3090/i, { name: 'NVIDIA GeForce RTX 3090', tflops: 35.6, tensorTflops: 35.6, gbs: 936 }],
  [/\bMI300X\b/i, { name: 'AMD Instinct MI300X', tflops: 163.4, tensorTflops: 1307.4, gbs: 5300 }],
  [/RX 7900 XTX/i, { name: 'AMD Radeon RX 7900 XTX', tflops: 61.4, tensorTflops: 122.8, gbs: 960 }],
  [/\bM1 Ultra\b/i, { name: 'Apple M1 Ultra (64-core GPU)', tflops: 21, tensorTflops: 21, gbs: 800 }],
  [/\bM1 Max\b/i, { name: 'Apple M1 Max (32-core GPU)', tflops: 10.4, tensorTflops: 10.4, gbs: 400 }],
  [/\bM1 Pro\b/i, { name: 'Apple M1 Pro (16-core GPU)', tflops: 5.2, tensorTflops: 5.2, gbs: 200 }],
  [/\bM1\b/i, { name: 'Apple M1 (8-core GPU)', tflops: 2.6, tensorTflops: 2.6, gbs: 68.25 }],
  [/\bM2 Ultra\b/i, { name: 'Apple M2 Ultra (76-core GPU)', tflops: 27.2, tensorTflops: 27.2, gbs: 800 }],
  [/\bM2 Max\b/i, { name: 'Apple M2 Max (38-core GPU)', tflops: 13.6, tensorTflops: 13.6, gbs: 400 }],
  [/\bM2 Pro\b/i, { name: 'Apple M2 Pro (19-core GPU)', tflops: 6.8, tensorTflops: 6.8, gbs: 200 }],
  [/\bM2\b/i, { name: 'Apple M2 (10-core GPU)', tflops: 3.6, tensorTflops: 3.6, gbs: 100 }],
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
  };
}
