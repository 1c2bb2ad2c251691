/**
 * The class of adapter phaselens runs on, decided here and nowhere else, from what WebGPU
 * says about it: `isFallbackAdapter`, the adapter info (vendor, architecture, device,
 * description) and nothing by guesswork. Kernels pick their variants by the *kernel
 * class* derived from it — 'cpu' (software rasterisers: lavapipe, SwiftShader, WARP,
 * where a subgroup is one SIMD register and barriers are costly) or 'gpu' — and the
 * kernel class can be forced (`--kernels cpu|gpu`, or PHASELENS_KERNELS), so every
 * variant also runs, for correctness, on this machine's lavapipe.
 *
 * An adapter that gives no evidence (Chrome's compatibility adapter reports empty info)
 * is 'unknown', never 'discrete': it gets the portable GPU variants, and nothing that
 * assumes a big discrete GPU.
 */
import { UserError } from '../errors.ts';

export type AdapterClass = 'cpu' | 'integrated' | 'discrete' | 'unknown';
export type KernelClass = 'cpu' | 'gpu';
export type KernelChoice = 'auto' | KernelClass;

export interface AdapterFacts {
  info?: Partial<Pick<GPUAdapterInfo, 'vendor' | 'architecture' | 'device' | 'description'>> & { isFallbackAdapter?: boolean };
  /** Older spelling, on the adapter itself. */
  isFallbackAdapter?: boolean;
}

export interface Classified {
  adapterClass: AdapterClass;
  /** What decided it, for the adapter line and bug reports. */
  evidence: string;
}

const SOFTWARE = /\b(llvmpipe|lavapipe|swiftshader|software|warp|microsoft basic render)\b/i;
const INTEGRATED_VENDOR = /\b(apple|qualcomm|arm|mali|adreno|imagination|powervr|broadcom)\b/i;
const INTEL_DISCRETE = /\b(arc|xe-hpg|alchemist|battlemage|dg2)\b/i;
/** AMD's APUs: "AMD Radeon(TM) Graphics", "Radeon Vega 8 Graphics", RDNA-in-APU names. */
const AMD_INTEGRATED = /radeon(\(tm\))? (vega \d+ )?graphics|\bapu\b|\b(renoir|cezanne|rembrandt|phoenix|raphael|van gogh)\b/i;

export function classifyAdapter(a: AdapterFacts): Classified {
  const info = a.info ?? {};
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  if (info.isFallbackAdapter || a.isFallbackAdapter) return { adapterClass: 'cpu', evidence: 'isFallbackAdapter' };
  const soft = SOFTWARE.exec(text);
  if (soft) return { adapterClass: 'cpu', evidence: `software renderer "${soft[1]}"` };
  if (!text.trim()) return { adapterClass: 'unknown', evidence: 'the adapter reports no vendor or device (e.g. a compatibility adapter)' };
  if (/\bnvidia\b/i.test(text)) return { adapterClass: 'discrete', evidence: 'vendor NVIDIA' };
  if (/\b(amd|ati)\b/i.test(text)) {
    return AMD_INTEGRATED.test(text) ? { adapterClass: 'integrated', evidence: 'AMD APU graphics' } : { adapterClass: 'discrete', evidence: 'vendor AMD' };
  }
  if (/\bintel\b/i.test(text)) {
    return INTEL_DISCRETE.test(text) ? { adapterClass: 'discrete', evidence: 'Intel Arc' } : { adapterClass: 'integrated', evidence: 'vendor Intel' };
  }
  const integrated = INTEGRATED_VENDOR.exec(text);
  if (integrated) return { adapterClass: 'integrated', evidence: `vendor ${integrated[1]}` };
  return { adapterClass: 'unknown', evidence: `no known vendor in "${text}"` };
}

/** The kernel variants to use: forced, or 'cpu' for software adapters and 'gpu' for every other. */
export function kernelClass(c: AdapterClass, choice: KernelChoice = 'auto'): KernelClass {
  if (choice !== 'auto') return choice;
  return c === 'cpu' ? 'cpu' : 'gpu';
}

export const KERNELS_ENV = 'PHASELENS_KERNELS';

/** `--kernels` / PHASELENS_KERNELS: auto (the default), cpu or gpu. */
export function parseKernelChoice(v: string | undefined, source = '--kernels'): KernelChoice {
  if (v === undefined || v === '') return 'auto';
  if (v === 'auto' || v === 'cpu' || v === 'gpu') return v;
  throw new UserError(`${source} must be auto, cpu or gpu, got ${JSON.stringify(v)}`);
}
