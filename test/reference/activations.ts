/** CPU references for shaders/lib/activations.wgsl, in f64. */
export type ActName = 'none' | 'gelu' | 'quick_gelu' | 'silu';

/** erf via its Maclaurin series / continued fraction — accurate to ~1e-15 (independent of the shader's erfcc fit). */
export function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    // Maclaurin series: erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
    let term = a, sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    r = 1 - erfcLarge(a);
  }
  return x < 0 ? -r : r;
}

/** erfc for a ≥ 3 by Lentz's continued fraction. */
function erfcLarge(a: number): number {
  // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + 2/(a + ...)))))
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (a + f);
  return Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
}

export function erfc(x: number): number {
  return x >= 3 ? erfcLarge(x) : 1 - erf(x);
}

export function activation(name: ActName): (x: number) => number {
  switch (name) {
    case 'none':
      return (x) => x;
    case 'gelu':
      return (x) => 0.5 * x * erfc(-x / Math.SQRT2);
    case 'quick_gelu':
      return (x) => x / (1 + Math.exp(-1.702 * x));
    case 'silu':
      return (x) => x / (1 + Math.exp(-x));
  }
}
