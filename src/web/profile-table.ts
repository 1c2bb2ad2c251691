/** The kernel-profile table of a run, from the profiler's per-kernel summary (GPU timestamps). */
import type { Gpu } from '../gpu/context.ts';
import { esc } from '../report/svg.ts';

export async function profileHtml(gpu: Gpu): Promise<string> {
  if (!gpu.features.timestamps || !gpu.profiler) {
    return '<p class="note">This adapter has no <code>timestamp-query</code>, so kernels are not timed and there is no profile table.</p>';
  }
  await gpu.sync();
  const rows = gpu.profiler.summary();
  const num = (v: number, d = 2) => `<td class="num">${v ? v.toFixed(d) : '-'}</td>`;
  const cells = rows.map(
    (r) => `<tr><td><code>${esc(r.kernel)}</code></td><td class="num">${r.calls}</td>${num(r.ms)}${num(r.steadyCalls ? (r.ms * 1000) / r.steadyCalls : 0, 1)}${num(r.gflops)}${num(r.gbps)}${num(r.firstMs)}</tr>`,
  );
  const c = gpu.pipelines.created;
  return `<table id="profile-table"><tr><th>kernel</th><th class="num">calls</th><th class="num">steady ms</th><th class="num">mean µs</th><th class="num">GFLOP/s</th><th class="num">GB/s</th><th class="num">first ms</th></tr>${cells.join('')}</table><p class="note">GPU timestamps of every dispatch since the adapter was opened (all runs of this page so far). Each pipeline's first dispatch, which may include its compilation, is in "first ms" and left out of the means and rates; creating the ${c.count} pipelines took ${c.ms.toFixed(1)} ms on the host.</p>`;
}
