// Mean and variance of one set of values for the norm kernels (layernorm, group_norm): the
// workgroup owns the set, each invocation folds a strided slice, lib/reduce.wgsl combines.
// Two passes for accuracy (the "corrected two-pass" algorithm): the mean m in f32 first,
// then from the centred values d = x − m (exact when |m| ≫ std) both Σd² and the
// correction c = Σd / n, which holds what rounding m to f32 lost: var = Σd²/n − c² (biased,
// as torch's norms), and x normalises to (d − c)·rstd. A one-pass Σx² − n·m² cancels badly
// when |m| ≫ std (residual streams), and without c the f32 rounding of m alone costs
// ulp(m)/std of relative error.
//
// The including shader includes lib/reduce.wgsl and defines `fn moment_x(i: u32) -> f32`,
// element i (0 ≤ i < n) of the set; call `moments` / `moment_sums` from uniform control flow.
//
// A set too large for one workgroup (group_norm) is split into parts: `moment_sums` of each
// part, then `combined_moments` of those — the same two passes over the parts (their f32
// means first, then each part's offset d from that, exact with its correction): Σ(x − m)²
// = Σ_parts (q + n·d²), every term ≥ 0 (Chan et al.'s pairwise update, without its
// order dependence). With the define PARTS; it needs `fn part_sums(j: u32) -> Sums` and `fn part_size(j: u32) -> f32`.

struct Moments {
  mean: f32,
  corr: f32,
  rstd: f32,
}

// A set's f32 mean, its correction c = Σd / n and q = Σd² − n·c² (n × the biased variance).
struct Sums {
  mean: f32,
  corr: f32,
  q: f32,
}

fn moment_sums(n: u32, lid: u32) -> Sums {
  let nf = f32(n);
  var s = 0.0;
  for (var i = lid; i < n; i += WG) {
    s += moment_x(i);
  }
  let mean = wg_sum(s, lid) / nf;
  var c = 0.0;
  var q = 0.0;
  for (var i = lid; i < n; i += WG) {
    let d = moment_x(i) - mean;
    c += d;
    q += d * d;
  }
  let corr = wg_sum(c, lid) / nf;
  return Sums(mean, corr, max(wg_sum(q, lid) - nf * corr * corr, 0.0));
}

fn moments(n: u32, lid: u32, eps: f32) -> Moments {
  let m = moment_sums(n, lid);
  return Moments(m.mean, m.corr, inverseSqrt(m.q / f32(n) + eps));
}

#if PARTS
// The moments of the union of `parts` parts of n elements in all.
fn combined_moments(parts: u32, n: u32, lid: u32, eps: f32) -> Moments {
  let nf = f32(n);
  var s = 0.0;
  for (var j = lid; j < parts; j += WG) {
    s += part_size(j) * part_sums(j).mean;
  }
  let mean = wg_sum(s, lid) / nf;
  var c = 0.0;
  var q = 0.0;
  for (var j = lid; j < parts; j += WG) {
    let m = part_sums(j);
    let k = part_size(j);
    let d = (m.mean - mean) + m.corr;
    c += k * d;
    q += m.q + k * d * d;
  }
  let corr = wg_sum(c, lid) / nf;
  let variance = max(wg_sum(q, lid) / nf - corr * corr, 0.0);
  return Moments(mean, corr, inverseSqrt(variance + eps));
}
#endif

// v normalised by the set's moments
fn normalized(v: f32, m: Moments) -> f32 {
  return ((v - m.mean) - m.corr) * m.rstd;
}
