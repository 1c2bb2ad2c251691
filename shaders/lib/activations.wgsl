// Activation functions shared by the elementwise kernels and the matmul epilogue.
// WGSL has no erf: erfc uses the Chebyshev-fitted form from Numerical Recipes (erfcc),
// whose *relative* error is < 1.2e-7 everywhere, so GELU stays accurate for x << 0
// where 1 + erf(x/√2) would cancel.

fn erfc_(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.5 * a);
  let r = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(2.0 - r, r, z >= 0.0);
}

// GELU with erf, as HF's "gelu": x · Φ(x) = ½ x erfc(−x/√2)
fn gelu(x: f32) -> f32 {
  return 0.5 * x * erfc_(-x * 0.70710678118654752);
}

// CLIP's quick_gelu: x · σ(1.702 x)
fn quick_gelu(x: f32) -> f32 {
  return x / (1.0 + exp(-1.702 * x));
}

// SiLU (LLaMA's MLP gate): x · σ(x)
fn silu(x: f32) -> f32 {
  return x / (1.0 + exp(-x));
}
