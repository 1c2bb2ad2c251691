/**
 * `phaselens gate-report`: finished runs of several models side by side, in the shape of
 * "The Narrow Gate" (arXiv 2412.06646) — e.g. LLaVA (text output only) next to Chameleon
 * (native multimodal): the modality separation curve, the attention share by image-side
 * position, the neighbourhood overlap (labelled runs), the ablation table (`knockout`
 * with --layers / --from-last) and steering (`patch --data`). It reads only the runs'
 * aggregate.json, so nothing is recomputed, and writes
 *
 *   OUT/gate-report.html    the page (figures inlined), each run's model, dtype, data,
 *                           options and phaselens version in a column
 *   OUT/figures/*.svg       the figures, as files
 *   OUT/gate-report.json    every number the page shows, copied from the runs' files
 *                           (README, "gate-report")
 *
 * A folder that is not a finished run of the kind it is given as (no aggregate, another
 * command's, items left without a result, a format older than this reader) is refused
 * with what to do.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Stat } from '../analysis/aggregate.ts';
import type { GateAggregate } from '../analysis/gate-aggregate.ts';
import { UserError } from '../errors.ts';
import type { Figure } from '../report/figures.ts';
import { attentionShareFigure, modelTitle, overlapFigure, separationFigure, type GateRunView } from '../report/gate-figures.ts';
import { intervalFigure } from '../report/intervention-figures.ts';
import { renderSideBySide, type SideBySideSection } from '../report/side-by-side-html.ts';
import type { KnockoutAggregate } from './knockout.ts';
import { IMAGES_SUBDIR, readErrors, readRunIds, resultPath } from './runner.ts';
import { runMeta, writeFigures, writeFileAtomicSync } from './outputs.ts';
import { VERSION } from '../version.ts';

/** One model's folders, as given on the command line. */
export interface RunSpec {
  name: string;
  gate: string;
  knockout: string[];
  patch: string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** NAME=DIR → [name, dir]. */
function nameDir(flag: string, spec: string): [string, string] {
  const i = spec.indexOf('=');
  const name = i < 0 ? '' : spec.slice(0, i);
  const dir = i < 0 ? '' : spec.slice(i + 1);
  if (!NAME.test(name) || dir === '') throw new UserError(`${flag} ${spec}: give NAME=DIR, NAME of letters, digits, '.', '_', '-' (it names the run's column and figure files), e.g. ${flag} llava=runs/llava-gate`);
  return [name, dir];
}

/** `--run NAME=DIR …` (gate folders), `--knockout NAME=DIR …`, `--patch NAME=DIR …` → one spec per run, in --run order. */
export function parseRunSpecs(runs: readonly string[], knockouts: readonly string[] = [], patches: readonly string[] = []): RunSpec[] {
  const specs = new Map<string, RunSpec>();
  for (const s of runs) {
    const [name, gate] = nameDir('--run', s);
    if (specs.has(name)) throw new UserError(`--run ${s}: the name ${name} is given twice`);
    specs.set(name, { name, gate, knockout: [], patch: [] });
  }
  if (specs.size < 2) throw new UserError(`gate-report puts runs side by side: give two or more --run NAME=DIR (got ${specs.size})`);
  const attach = (flag: '--knockout' | '--patch', list: readonly string[]) => {
    for (const s of list) {
      const [name, dir] = nameDir(flag, s);
      const run = specs.get(name);
      if (!run) throw new UserError(`${flag} ${s}: no --run named ${name} (runs: ${[...specs.keys()].join(', ')})`);
      run[flag === '--knockout' ? 'knockout' : 'patch'].push(dir);
    }
  };
  attach('--knockout', knockouts);
  attach('--patch', patches);
  return [...specs.values()];
}

type Json = Record<string, unknown>;

function readJson(path: string, where: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${where}: ${path} does not parse as JSON (${(e as Error).message.split('\n')[0]}); re-run the command that wrote it`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UserError(`${where}: ${path} is not a JSON object`);
  return v as Json;
}

/** What a finished folder's aggregate.json says it is. */
function aggregateKind(a: Json): string {
  if ('separation' in a && 'attention' in a) return 'gate';
  if ('flows' in a) return 'knockout';
  if ('n_steerable' in a) return 'patch';
  if ('p_drop' in a) return 'ablate';
  if ('inter' in a) return 'analyze';
  return 'unknown';
}

function requireFolder(where: string, dir: string): void {
  if (!existsSync(dir)) throw new UserError(`${where}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${where}: not a folder`);
}

/** OUT/aggregate.json of a finished `kind` run, checked: its kind, finished, the fields this reader needs. */
function readAggregate(where: string, dir: string, kind: 'gate' | 'knockout' | 'patch', command: string): Json {
  requireFolder(where, dir);
  const path = join(dir, 'aggregate.json');
  if (!existsSync(path)) {
    if (existsSync(join(dir, 'patch.json'))) {
      throw new UserError(kind === 'patch'
        ? `${where}: a patch of one image pair (patch.json); steering success is over a data set: patch --data SPEC --token end-of-image [--every 4 | --from-layer-on]`
        : `${where}: a patch folder, not a ${kind} run`);
    }
    throw new UserError(existsSync(join(dir, IMAGES_SUBDIR))
      ? `${where}: not a finished run (no aggregate.json): re-run its command to finish it, or merge its shards (phaselens merge)`
      : `${where}: not an output folder of phaselens ${kind} (no aggregate.json)`);
  }
  const a = readJson(path, where);
  const k = aggregateKind(a);
  if (k !== kind) throw new UserError(`${where}: ${k === 'unknown' ? 'not an aggregate of phaselens' : `the output of phaselens ${k}`}, not of ${kind}`);
  if (typeof a.phaselens_version !== 'string') throw new UserError(`${where}: aggregate.json has no phaselens_version (made by an older phaselens); ${command}`);
  requireFinished(where, dir);
  return a;
}

/** Every item the folder's runs were asked for (OUT/runs/, runner.ts) has a result or a recorded failure. */
function requireFinished(where: string, dir: string): void {
  const asked = readRunIds(dir);
  if (asked === null) return; // made before runs were recorded: the aggregate's own checks decide
  const failed = new Set(readErrors(dir).map((e) => e.id));
  const missing = [...asked].filter((id) => !failed.has(id) && !existsSync(resultPath(dir, id)));
  if (missing.length) throw new UserError(`${where}: not a finished run: ${missing.length} item(s) have no result (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}); re-run its command to complete them`);
}

const REFRESH_GATE = 're-run its gate command (finished items are kept) or `phaselens merge DIR --out DIR` to rewrite the aggregate in the current format';

function readGate(spec: RunSpec): GateAggregate {
  const where = `--run ${spec.name}=${spec.gate}`;
  const a = readAggregate(where, spec.gate, 'gate', REFRESH_GATE);
  const old = (['run', 'n_items', 'options'] as const).find((k) => !(k in a)) ?? (!('resolution' in (a.separation as Json)) ? 'separation.resolution' : undefined);
  if (old) throw new UserError(`${where}: aggregate.json of phaselens ${a.phaselens_version} has no "${old}" (an older format); ${REFRESH_GATE}`);
  const g = a as unknown as GateAggregate;
  if (g.run.missing) throw new UserError(`${where}: not a finished run: its aggregate was written with ${g.run.missing} item(s) missing; re-run its gate command to complete them and rewrite it`);
  if (g.n_items === 0) throw new UserError(`${where}: the run has no item with a result (${g.run.failed} failed: see its errors.json)`);
  return g;
}

/** A knockout aggregate of the layers / from-last modes (pipeline/knockout.ts's header), its scores present. */
type KnockoutAgg = KnockoutAggregate & { mode: 'layers' | 'from-last'; p_base: Stat };

/**
 * The same model as the gate run: the same family and checkpoint folder name (`model` is the
 * folder as each command was given it, so runs from different working folders spell it differently).
 */
function sameModel(where: string, what: { model: string; model_family: string }, gate: GateAggregate, name: string): void {
  if (what.model_family !== gate.model_family || basename(what.model) !== basename(gate.model)) {
    throw new UserError(`${where}: a run of ${what.model_family} ${what.model}, but --run ${name} is of ${gate.model_family} ${gate.model}: give each model's own folders`);
  }
}

function readKnockout(spec: RunSpec, dir: string, gate: GateAggregate): KnockoutAgg {
  const where = `--knockout ${spec.name}=${dir}`;
  const again = 're-run its knockout command (finished items are kept) to rewrite the aggregate';
  const a = readAggregate(where, dir, 'knockout', again);
  const mode = a.mode ?? (a.options as Json | undefined)?.mode;
  if (mode === undefined) throw new UserError(`${where}: aggregate.json of phaselens ${a.phaselens_version} has no "mode" (an older format, from before --layers / --from-last); the ablation table needs a knockout run with --layers all or --from-last (e.g. --flow gate --layers all)`);
  if (mode === 'window') throw new UserError(`${where}: a knockout in the window mode (arXiv 2411.18620's sweep); the ablation table needs one with --layers all or --from-last (e.g. --flow gate --layers all)`);
  const k = { ...a, mode } as unknown as KnockoutAgg;
  const old = Object.entries(k.flows).find(([, f]) => !Array.isArray(f.accuracy) || !Array.isArray(f.agreement) || !Array.isArray(f.window) || !Array.isArray(f.p));
  if (!('p_base' in a) || old) throw new UserError(`${where}: aggregate.json of phaselens ${a.phaselens_version} lacks ${old ? `flows["${old[0]}"].accuracy/agreement/window/p` : 'p_base'} (an older format); ${again}`);
  sameModel(where, k, gate, spec.name);
  return k;
}

/** OUT/aggregate.json of `patch --data` (pipeline/patch.ts's header): steering success per layer. */
interface SteeringAgg {
  phaselens_version: string;
  model: string;
  model_family: string;
  n_items: number;
  options: Json;
  site: string;
  n_steerable: number;
  per_layer: { layer: number; success: number | null; logit_diff: Stat; shift: Stat }[];
}

function readPatch(spec: RunSpec, dir: string, gate: GateAggregate): SteeringAgg {
  const where = `--patch ${spec.name}=${dir}`;
  const again = 're-run its patch command (finished items are kept) to rewrite the aggregate';
  const a = readAggregate(where, dir, 'patch', again);
  const p = a as unknown as SteeringAgg;
  const old = ['site', 'n_items', 'options'].find((k) => !(k in a)) ?? (Array.isArray(p.per_layer) && p.per_layer.every((x) => 'success' in x && 'shift' in x) ? undefined : 'per_layer[].success/shift');
  if (old) throw new UserError(`${where}: aggregate.json of phaselens ${a.phaselens_version} has no "${old}" (an older format); ${again}`);
  sameModel(where, p, gate, spec.name);
  return p;
}

interface LoadedRun {
  spec: RunSpec;
  gate: GateAggregate;
  knockout: { dir: string; agg: KnockoutAgg }[];
  patch: { dir: string; agg: SteeringAgg }[];
}

/** Every folder read and checked, before anything is written. */
export function loadRuns(specs: readonly RunSpec[]): LoadedRun[] {
  return specs.map((spec) => {
    const gate = readGate(spec);
    return {
      spec,
      gate,
      knockout: spec.knockout.map((dir) => ({ dir, agg: readKnockout(spec, dir, gate) })),
      patch: spec.patch.map((dir) => ({ dir, agg: readPatch(spec, dir, gate) })),
    };
  });
}

/** The rows of one knockout run's ablation table: each flow in its layer range(s) — from-last: all layers only (the curve is a figure). */
function ablationRows(k: KnockoutAgg, L: number) {
  return Object.entries(k.flows).flatMap(([flow, f]) =>
    f.window.flatMap((w, i) =>
      k.mode === 'layers' || (w[0] === 0 && w[1] === L - 1)
        ? [{ flow, layers: w, p: f.p[i], rel_change_pct: f.rel_change_pct[i], accuracy: f.accuracy?.[i] ?? null, agreement: f.agreement?.[i] ?? null }]
        : [],
    ),
  );
}

function dtypeOf(options: Json): unknown {
  return options.weight_dtypes ?? options.dtype;
}

/** The report's numbers, each copied from the runs' files (OUT/gate-report.json). */
function reportJson(runs: readonly LoadedRun[]) {
  return {
    phaselens_version: VERSION,
    runs: runs.map(({ spec, gate: g, knockout, patch }) => {
      const L = g.separation.median.length - 1;
      return {
        name: spec.name,
        gate_folder: spec.gate,
        model: g.model,
        model_family: g.model_family,
        dtype: dtypeOf(g.options),
        phaselens_version: g.phaselens_version,
        data: g.run.data,
        n_items: g.n_items,
        failed: g.run.failed,
        options: g.options,
        separation: g.separation,
        attention_share: Object.fromEntries(Object.entries(g.attention.groups).map(([name, x]) => [name, x.share])),
        ...(g.neighbourhood_overlap && { neighbourhood_overlap: g.neighbourhood_overlap }),
        ablation: knockout.map(({ dir, agg: k }) => ({
          folder: dir,
          phaselens_version: k.phaselens_version,
          mode: k.mode,
          n_items: k.n_items,
          options: k.options,
          p_base: k.p_base,
          accuracy_base: k.vqa?.accuracy_base ?? null,
          rows: ablationRows(k, L),
          ...(k.mode === 'from-last' && { from_last: Object.fromEntries(Object.entries(k.flows).map(([flow, f]) => [flow, { first_layer: f.window.map((w) => w[0]), p: f.p, accuracy: f.accuracy }])) }),
        })),
        steering: patch.map(({ dir, agg: p }) => ({
          folder: dir,
          phaselens_version: p.phaselens_version,
          site: p.site,
          token: p.options.token ?? null,
          n_items: p.n_items,
          n_steerable: p.n_steerable,
          options: p.options,
          per_layer: p.per_layer,
        })),
      };
    }),
  };
}

type ReportJson = ReturnType<typeof reportJson>;

function sections(runs: readonly LoadedRun[], j: ReportJson): SideBySideSection[] {
  const views: GateRunView[] = runs.map((r) => ({ name: r.spec.name, agg: r.gate }));
  const overlaps = views.map((v) => overlapFigure(v, `gate_overlap.${v.name}.svg`, `gate-overlap-${v.name}`)).filter((f): f is Figure => f !== undefined);
  const out: SideBySideSection[] = [
    {
      title: 'Modality separation',
      note: 'Per hidden state, how far apart image and text tokens stay: median |cos| over every image × text token pair, band from the first to the third quartile (means over items). In the study, native multimodal models keep the modalities apart to the last layers; models with text output only mix them.',
      figures: [separationFigure(views)],
    },
    {
      title: 'Attention share by image-side position',
      note: 'Per decoder layer, the share of the text queries\' attention to the image side that each position group gets (they add up to 1). A narrow gate: one one-token group (end-of-image) takes most of it.',
      figures: views.map((v) => attentionShareFigure(v, `gate_attention_share.${v.name}.svg`, `gate-attention-share-${v.name}`)),
      side: true,
    },
  ];
  if (overlaps.length) {
    out.push({ title: 'Neighbourhood overlap', note: 'Per hidden state, at each one-token candidate position: the fraction of a sample\'s k nearest neighbours with its label (labelled runs only).', figures: overlaps, side: true });
  }
  const ablation = j.runs.flatMap((r) =>
    r.ablation.flatMap((a) => [
      [r.name, 'none', '—', a.n_items, a.p_base.mean, 0, a.accuracy_base, 1],
      ...a.rows.map((x) => [r.name, x.flow, `${x.layers[0]}–${x.layers[1]}`, x.p.n, x.p.mean, x.rel_change_pct.mean, x.accuracy, x.agreement]),
    ]),
  );
  if (ablation.length) {
    const fromLast = runs.flatMap((r) =>
      r.knockout
        .filter((k) => k.agg.mode === 'from-last')
        .map((k, i) =>
          intervalFigure({
            id: `ablation-from-last-${r.spec.name}-${i}`,
            file: `ablation_from_last.${r.spec.name}${i ? `.${i}` : ''}.svg`,
            title: `Knockout from the last layers back — ${r.spec.name}`,
            subtitle: `${modelTitle(r.gate)} · ${k.agg.n_items} item(s)`,
            xLabel: 'first knocked-out layer i (layers i … L−1)',
            yLabel: 'p(answer) at the last prompt position',
            series: Object.entries(k.agg.flows).map(([name, f]) => ({ name, x: f.window.map((w) => w[0]), stats: f.p })),
            caption: 'Each flow knocked out in decoder layers i … L−1; the probability of the un-intervened answer token, mean over items ± 1 std.',
          }),
        ),
    );
    out.push({
      title: 'Ablation',
      note: 'Attention knockout of the text queries (the prompt\'s and every generated token\'s) from an image-side group in the layers shown (`knockout --flow gate --layers all` or `--from-last`): the un-intervened answer\'s probability at the last prompt position (mean over items), its relative change, VQA exact-match accuracy of the answer generated under the knockout (— without answers in the data set), and the share of items whose answer stays the un-intervened one.',
      figures: fromLast,
      side: true,
      table: { columns: ['run', 'knocked out', 'layers', 'items', 'p(answer)', 'rel. change %', 'VQA accuracy', 'same answer'], rows: ablation },
    });
  }
  const steering = j.runs.flatMap((r) =>
    r.steering.flatMap((s) => s.per_layer.map((x) => [r.name, s.token, s.site, x.layer, `${s.n_steerable} of ${s.n_items}`, x.success, x.shift.mean, x.logit_diff.mean])),
  );
  if (steering.length) {
    const figures = runs.flatMap((r) =>
      r.patch.length
        ? [
            intervalFigure({
              id: `steering-${r.spec.name}`,
              file: `steering.${r.spec.name}.svg`,
              title: `Steering success — ${r.spec.name}`,
              subtitle: `${modelTitle(r.gate)} · ${r.patch.map((p) => `${p.agg.n_steerable} of ${p.agg.n_items} item(s) steerable`).join(' · ')}`,
              xLabel: 'decoder layer l patched',
              yLabel: 'share of answers turned into the source\'s',
              series: r.patch.map((p) => ({ name: `${String(p.agg.options.token)} at ${p.agg.site}`, x: p.agg.per_layer.map((x) => x.layer), stats: p.agg.per_layer.map((x) => ({ mean: x.success, std: null, n: p.agg.n_steerable })) })),
              yBounds: [0, 1],
              caption: 'Per layer l, the share of the steerable items (source and target top answers differ) whose top answer, after the group\'s residual stream entering l (site lm.blocks.{l}.resid_pre; {l..L-1}: from l on) is copied from the counterfactual image\'s run, is the source\'s.',
            }),
          ]
        : [],
    );
    out.push({
      title: 'Steering',
      note: 'Each item\'s token group (the study: end-of-image) patched from the run on another image (`patch --data SPEC`): per layer, steering success (the share of steerable items whose answer became the source image\'s; — when none is steerable), the mean shift of the logit difference (source\'s − target\'s top answer) and its mean after the patch.',
      figures,
      side: true,
      table: { columns: ['run', 'group', 'site', 'layer', 'steerable', 'success', 'shift (mean)', 'logit diff (mean)'], rows: steering },
    });
  }
  return out;
}

/** Every folder checked, then OUT/gate-report.html, OUT/figures/*.svg and OUT/gate-report.json; returns the page's path. */
export function gateReport(specs: readonly RunSpec[], out: string): { report: string; json: string } {
  const runs = loadRuns(specs);
  const j = reportJson(runs);
  const secs = sections(runs, j);
  mkdirSync(out, { recursive: true });
  writeFigures(out, secs.flatMap((s) => s.figures ?? []));
  const json = join(out, 'gate-report.json');
  writeFileAtomicSync(json, JSON.stringify(j, null, 1) + '\n');
  const report = join(out, 'gate-report.html');
  writeFileAtomicSync(
    report,
    renderSideBySide({
      title: 'the narrow gate, side by side',
      method: 'The measures of "The Narrow Gate" (arXiv 2412.06646) for each run, read from the finished runs\' aggregate.json (gate, knockout, patch --data); nothing is recomputed.',
      runs: runs.map(({ spec, gate: g, knockout, patch }) => ({
        name: spec.name,
        meta: {
          ...runMeta(g, g.run),
          dtype: dtypeOf(g.options),
          phaselens_version: g.phaselens_version,
          'gate folder': spec.gate,
          ...(knockout.length && { 'knockout folders': knockout.map((k) => `${k.dir} (phaselens ${k.agg.phaselens_version}, ${k.agg.mode})`).join(', ') }),
          ...(patch.length && { 'patch folders': patch.map((p) => `${p.dir} (phaselens ${p.agg.phaselens_version}, ${String(p.agg.options.token)} at ${p.agg.site})`).join(', ') }),
          ...Object.fromEntries(Object.entries(g.options).filter(([k]) => k !== 'weight_dtypes').map(([k, v]) => [`option ${k}`, v])),
        },
      })),
      sections: secs,
      footer: `Every number shown: gate-report.json; figures: figures/. Made by phaselens ${VERSION}.`,
    }),
  );
  return { report, json };
}
