/** A GPU failure (validation, out of memory, device loss, WGSL compile error) with context. */
export class GpuError extends Error {
  override name = 'GpuError';
}
