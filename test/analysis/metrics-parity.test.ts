/**
 * Analysis parity: the GPU probes of `analyze` (contextualization from mean unit vectors,
 * norm-based attention inside the attention pass, LogitLens top-k) against the PyTorch
 * reference (test/reference/metrics_ref.py: pairwise cosines, full attention maps, full
 * softmax, float64) on tiny checkpoints. Tolerance 1e-4 (fp32): absolute for the cosine
 * means (bounded by 1), relative to the tensor's scale for norm attention and
 * probabilities. LogitLens ids must match except where two candidates' probabilities are
 * within 1e-6 of each other (f32 vs f64 may order near-ties differently).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { analyzeImage } from '../../src/analysis/analyze-image.ts';
import { readImageFile } from '../../src/io/load-node.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { runMetricsReference, type MetricsRef } from '../reference/metrics-ref.ts';
import { getGpu, relErr } from '../helpers/gpu.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const TOL = 1e-4;
const work = mkdtempSync(join(tmpdir(), 'phaselens-metrics-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Ours = {
  contextualization: MetricsRef['contextualization'];
  norm_attention: MetricsRef['norm_attention'];
  logit_lens: MetricsRef['logit_lens'];
  tokens: { text: number[]; image: [number, number] };
};

const llava = { prompt: 'Describe the image.', chat: true };
const instructblip = { prompt: 'Describe the image.' };
const cases = [
  { name: 'LLaVA f32, BOS kept, last-token query', arch: 'llava' as const, prompt: llava, dtype: 'f32' as const, gqa: false, dropBos: false, query: undefined as number | undefined, k: 5 },
  { name: 'LLaVA f16 GQA, BOS dropped, query 10', arch: 'llava' as const, prompt: llava, dtype: 'f16' as const, gqa: true, dropBos: true, query: 10, k: 3 },
  { name: 'InstructBLIP f32, BOS kept, last-token query', arch: 'instructblip' as const, prompt: instructblip, dtype: 'f32' as const, gqa: false, dropBos: false, query: undefined, k: 5 },
  // BOS sits after the 8 queries (position 8): dropping it must not drop position 0
  { name: 'InstructBLIP f16 GQA, BOS dropped, query 3 (a query token)', arch: 'instructblip' as const, prompt: instructblip, dtype: 'f16' as const, gqa: true, dropBos: true, query: 3, k: 3 },
];

for (const c of cases) {
  it(`analysis metrics match the PyTorch reference: ${c.name}`, async () => {
    const dir = join(work, c.name.replace(/\W+/g, '-'));
    await makeTiny({ arch: c.arch, out: dir, seed: 7, dtype: c.dtype, gqa: c.gqa });
    const gpu = await getGpu();
    const m = await loadDir(gpu, dir);
    const ours = (await analyzeImage(gpu, m, { id: 'cats', image: IMAGE, captions: ['two cats on a couch'] }, readImageFile(IMAGE), { prompt: c.prompt, dropBos: c.dropBos, query: c.query, topk: c.k, smooth: 1, padToSquare: false })) as unknown as Ours;
    const x = prepareFile(m, c.prompt, IMAGE);
    const pixels = x.pixels!;
    const ref = await runMetricsReference({
      model: dir,
      pixelValues: pixels.data,
      pixelShape: [...pixels.shape] as [number, number, number],
      inputIds: x.ids,
      qformerInputIds: x.qformerIds,
      dropBos: c.dropBos,
      query: c.query,
      k: c.k,
    });

    if (c.arch === 'instructblip' && c.dropBos) expect(ref.tokens.text[0]).toBe(9); // queries 0..7, BOS 8 dropped
    expect(ours.tokens.text).toEqual(ref.tokens.text);
    expect(ours.tokens.image).toEqual(ref.tokens.image);
    const report: string[] = [];
    for (const key of ['inter', 'intra_image', 'intra_text'] as const) {
      const a = ours.contextualization[key];
      const b = ref.contextualization[key];
      const d = Math.max(...a.map((v, i) => Math.abs((v ?? 0) - (b[i] ?? 0))));
      report.push(`${key} max |Δ| ${d.toExponential(2)}`);
      expect(a.map((v) => v === null), key).toEqual(b.map((v) => v === null));
      expect(d, key).toBeLessThanOrEqual(TOL);
      const p = Math.abs((ours.contextualization.last_layer_prenorm[key] ?? 0) - (ref.contextualization.last_layer_prenorm[key] ?? 0));
      expect(p, `prenorm ${key}`).toBeLessThanOrEqual(TOL);
    }
    expect(ours.norm_attention.query).toBe(ref.norm_attention.query);
    const la = relErr(ours.norm_attention.layer.flat(), ref.norm_attention.layer.flat());
    const ha = relErr(ours.norm_attention.head.flat(2), ref.norm_attention.head.flat(2));
    report.push(`norm attention relErr layer ${la.toExponential(2)} head ${ha.toExponential(2)}`);
    expect(la).toBeLessThanOrEqual(TOL);
    expect(ha).toBeLessThanOrEqual(TOL);

    let pd = 0;
    let swaps = 0;
    ours.logit_lens.top_ids.forEach((layer, l) =>
      layer.forEach((ids, t) => {
        const rp = ref.logit_lens.top_probs[l][t];
        const op = ours.logit_lens.top_probs[l][t];
        ids.forEach((id, i) => {
          pd = Math.max(pd, Math.abs(op[i] - rp[i]) / rp[0]);
          if (id !== ref.logit_lens.top_ids[l][t][i]) {
            swaps++;
            const j = ref.logit_lens.top_ids[l][t].indexOf(id);
            expect(j, `layer ${l} token ${t}: id ${id} not in the reference top-k`).toBeGreaterThanOrEqual(0);
            expect(Math.abs(rp[j] - rp[i]), `layer ${l} token ${t} rank ${i}`).toBeLessThanOrEqual(1e-6);
          }
        });
      }),
    );
    report.push(`logit lens prob relErr ${pd.toExponential(2)}, near-tie swaps ${swaps}`);
    expect(pd).toBeLessThanOrEqual(TOL);
    console.log(`${c.name}: ${report.join('; ')}`);
  });
}
