// Flat indices for dispatches whose workgroups were split over x and y by `Gpu.grid(n)`
// (x·y ≥ n, so the last few workgroups may fall past the end: callers bound-check).
//   workgroup_index(wid, nwg)   0 .. x·y−1, row-major over (y, x)

fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}
