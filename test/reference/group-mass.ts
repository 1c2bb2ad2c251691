/** CPU reference for shaders/group_mass.wgsl: 1/H Σ_h Σ_{j ∈ g} α[h, j] per group, in f64. */
export function groupMassRef(alpha: Float32Array, H: number, Skv: number, groups: readonly (readonly number[])[]): number[] {
  return groups.map((keys) => {
    let s = 0;
    for (let h = 0; h < H; h++) for (const j of keys) s += alpha[h * Skv + j];
    return s / H;
  });
}
