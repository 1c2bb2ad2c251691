/** The kernel-profile table of a run, from the profiler's per-kernel summary (GPU timestamps). */
import type { Gpu } from '../gpu/context.ts';
import { esc } from '../report/svg.ts';

export async function profileHtml(gpu: Gpu): Promise<string> {
  if (!gpu.features.timestamps || !gpu.profiler) {
    return '<p class="note">This adapter has no <code>timestamp-query</code>, so kernels are not timed and there is no profile table.</p>';
  }
  await gpu.sync();
  const rows = gpu.profiler.summary();
  const cells = rows.map(
    (r) => `<tr><td><code>${esc(r.kernel)}</code></td><td class="num">${r.calls}</td><td class="num">${r.ms.toFixed(2)}</td><td class="num">${((r.ms * 1000) / r.calls).toFixed(1)}</td><td class="num">${r.gflops.toFixed(2)}</td><td class="num">${r.gbps.toFixed(2)}</td></tr>`,
  );
  return `<table id="profile-table"><tr><th>kernel</th><th class="num">calls</th><th class="num">total ms</th><th class="num">mean µs</th><th class="num">GFLOP/s</th><th class="num">GB/s</th></tr>${cells.join('')}</table><p class="note">GPU timestamps of every dispatch since the adapter was opened (all runs of this page so far).</p>`;
}
