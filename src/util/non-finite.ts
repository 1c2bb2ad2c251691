/**
 * Finding NaN and ±Inf in a result before it is written (CLI) or offered for download (page):
 * JSON would silently turn them into null.
 */

/** The path of the first NaN / ±Inf number in a result object (e.g. `recall[3]`), or null. */
export function firstNonFinite(v: unknown, path = ''): { path: string; value: number } | null {
  if (typeof v === 'number') return Number.isFinite(v) ? null : { path: path || '(value)', value: v };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = firstNonFinite(v[i], `${path}[${i}]`);
      if (r) return r;
    }
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const r = firstNonFinite(x, path ? `${path}.${k}` : k);
      if (r) return r;
    }
  }
  return null;
}
