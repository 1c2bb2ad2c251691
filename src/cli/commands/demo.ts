/**
 * `phaselens demo`: the shipped model organisms (weights-tools/organisms/: a LLaVA-layout
 * and an InstructBLIP-layout toy trained on synthetic shapes-world scenes, see their
 * model cards) through `analyze` on their 48 committed evaluation scenes with captions,
 * then `generate` on one of those scenes' questions. Both families by default, or one
 * with `--arch`. Prints, per model, where the report is, the phases of the inter-modal
 * curve, the LogitLens recall peak, the answer next to the expected one, and the
 * per-kernel profile.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import type { Aggregate } from '../../analysis/aggregate.ts';
import { nodeDirectory } from '../../io/source-node.ts';
import { readImageFile } from '../../io/load-node.ts';
import { generate } from '../../models/generate.ts';
import { FAMILY_NAMES, openModel } from '../../models/registry.ts';
import type { Gpu } from '../../gpu/context.ts';
import { analyze } from '../../pipeline/analyze.ts';
import { EVAL_SCENES, evalCoco, organismDir } from '../../../weights-tools/train/shipped.ts';
import type { OrganismArch } from '../../../weights-tools/train/organisms.ts';
import { checkProfilePath, finishProfile, openGpu } from '../gpu-session.ts';
import { checkOutputFolder } from '../output-paths.ts';
import { DEFAULT_PROMPT } from './analyze.ts';

/** The families of the table that have a shipped organism (weights-tools/organisms/shapes-<family>). */
const ARCHES: OrganismArch[] = FAMILY_NAMES.filter((f) => existsSync(organismDir(f)));

const fmt = (v: number | null) => (v === null ? '—' : v.toFixed(3));

/** One line per phase run: its label, layers and the curve at its ends. */
function phaseLines(a: Aggregate): string[] {
  const inter = a.inter.map((s) => s.mean);
  if (!a.phases) return ['no phases (curve too short)'];
  const ends = [0, ...a.phases.boundaries, inter.length - 1];
  return a.phases.labels.map((label, i) => `${a.phases!.directions[i]} ${ends[i]}→${ends[i + 1]} (${fmt(inter[ends[i]])} → ${fmt(inter[ends[i + 1]])}) ${label}`);
}

async function demoOne(gpu: Gpu, arch: OrganismArch, out: string): Promise<void> {
  const dir = organismDir(arch);
  const files = await openModel(nodeDirectory(dir));
  const m = await files.load(gpu);
  const chat = m.capabilities.chatTemplate;
  const prompt = { prompt: m.promptFor(DEFAULT_PROMPT, chat), chat };
  const t0 = performance.now();
  const r = await analyze(gpu, m, { data: evalCoco(), out, prompt, dropBos: false, topk: 5, smooth: 1, padToSquare: false });
  const agg = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8')) as Aggregate;
  console.log(`\n== ${arch}: ${dir} (a toy trained on synthetic shapes-world scenes; see its README.md)`);
  console.log(`data    ${r.items.length} held-out shapes-world scenes with captions (${EVAL_SCENES}); prompt ${JSON.stringify(prompt.prompt)}${chat ? ' in the chat template' : ''}`);
  console.log(`visual  ${m.visualTokens}`);
  console.log(`result  ${r.summary.done} analysed, ${r.summary.skipped} already done, ${r.summary.failed} failed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`inter   ${agg.inter.map((s) => fmt(s.mean)).join(' ')}`);
  for (const line of phaseLines(agg)) console.log(`phase   ${line}`);
  if (agg.recall) {
    const rec = agg.recall.map((s) => s.mean ?? 0);
    const best = rec.indexOf(Math.max(...rec));
    console.log(`recall  LogitLens caption-word recall ${rec.map((v) => v.toFixed(2)).join(' ')} (best: layer ${best}, ${rec[best].toFixed(3)}; layer 0: ${rec[0].toFixed(3)})`);
  }

  const scenes = JSON.parse(readFileSync(join(EVAL_SCENES, 'scenes.json'), 'utf8')) as { scenes: { file: string; qa: { question: string; answer: string }[] }[] };
  const { file, qa } = scenes.scenes[0];
  const x = m.prepare({ prompt: m.promptFor(qa[0].question, chat), chat }, readImageFile(join(EVAL_SCENES, 'images', file)));
  const g = await generate(gpu, m, x, 8);
  const answer = m.decode(g.tokens).replace('</s>', '').trim();
  console.log(`answer  ${file}: ${JSON.stringify(qa[0].question)} → ${JSON.stringify(answer)} (expected ${JSON.stringify(qa[0].answer)})`);
  console.log(`report  ${r.report}`);
}

export function register(program: Command): void {
  program
    .command('demo')
    .description(`analyze the shipped shapes-world organisms (${ARCHES.join(', ')}) on their evaluation scenes, answer a question, print the kernel profile`)
    .addOption(new Option('--arch <family>', 'only one family').choices(ARCHES))
    .option('--out <dir>', `output folder prefix (default phaselens-demo: ${ARCHES.map((a) => `phaselens-demo/${a}`).join(', ')})`, 'phaselens-demo')
    .option('--profile [trace]', 'Chrome trace path', 'phaselens-trace.json')
    .option('--kernels <class>', 'kernel variants: auto (by adapter class), cpu or gpu')
    .action(async (o: { arch?: OrganismArch; out: string; profile: string; kernels?: string }) => {
      checkOutputFolder('--out', o.out);
      checkProfilePath(o);
      const gpu = await openGpu(o);
      for (const arch of o.arch ? [o.arch] : ARCHES) await demoOne(gpu, arch, join(o.out, arch));
      await finishProfile(gpu, o);
    });
}
