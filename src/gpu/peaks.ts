/**
 * Peak rates of common GPUs, for the profile's "% of peak" columns: FP32 (non-tensor-core)
 * TFLOP/s — what phaselens's kernels compute with — and memory bandwidth in GB/s, from the
 * vendors' data sheets. Matched on the adapter description; `--peak-tflops` /
 * `--peak-gbs` give or override them (software adapters have no entry).
 */
export interface Peak {
  name: string;
  tflops: number;
  gbs: number;
}

const TABLE: [RegExp, Peak][] = [
  [/\bH200\b/i, { name: 'NVIDIA H200', tflops: 67, gbs: 4800 }],
  [/\bH100\b.*\bPCIe\b/i, { name: 'NVIDIA H100 PCIe', tflops: 51, gbs: 2000 }],
  [/\bH100\b/i, { name: 'NVIDIA H100 SXM', tflops: 67, gbs: 3350 }],
  [/\bGH200\b/i, { name: 'NVIDIA GH200', tflops: 67, gbs: 4000 }],
  [/\bA100\b.*\b40GB\b/i, { name: 'NVIDIA A100 40GB', tflops: 19.5, gbs: 1555 }],
  [/\bA100\b/i, { name: 'NVIDIA A100 80GB', tflops: 19.5, gbs: 2039 }],
  [/\bL40S\b/i, { name: 'NVIDIA L40S', tflops: 91.6, gbs: 864 }],
  [/\bL4\b/i, { name: 'NVIDIA L4', tflops: 30.3, gbs: 300 }],
  [/\bA10\b/i, { name: 'NVIDIA A10', tflops: 31.2, gbs: 600 }],
  [/\bV100\b/i, { name: 'NVIDIA V100', tflops: 15.7, gbs: 900 }],
  [/\bT4\b/i, { name: 'NVIDIA T4', tflops: 8.1, gbs: 320 }],
  [/RTX 4090/i, { name: 'NVIDIA GeForce RTX 4090', tflops: 82.6, gbs: 1008 }],
  [/RTX 3090/i, { name: 'NVIDIA GeForce RTX 3090', tflops: 35.6, gbs: 936 }],
  [/\bMI300X\b/i, { name: 'AMD Instinct MI300X', tflops: 163.4, gbs: 5300 }],
  [/RX 7900 XTX/i, { name: 'AMD Radeon RX 7900 XTX', tflops: 61.4, gbs: 960 }],
];

/** The peak of this adapter: the overrides where given, else the table's entry; null when neither is known. */
export function adapterPeak(adapterName: string, override: { tflops?: number; gbs?: number } = {}): Peak | null {
  const known = TABLE.find(([re]) => re.test(adapterName))?.[1];
  if (override.tflops === undefined && override.gbs === undefined) return known ?? null;
  return { name: known ? `${known.name}, overridden` : 'given', tflops: override.tflops ?? known?.tflops ?? NaN, gbs: override.gbs ?? known?.gbs ?? NaN };
}
