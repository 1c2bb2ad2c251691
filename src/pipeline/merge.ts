/**
 * `phaselens merge`: the aggregate, figures and report of several output folders — the
 * shards of one run (`--shard I/N`), or one folder that several shards wrote into. The
 * per-item results are collected (an id found twice is kept once; its copies must be
 * equal), copied into OUT/images/, and finished exactly as the run itself would have
 * finished them. Runs are merged only when every result agrees on the model, the
 * options and the phaselens version; otherwise the error names the field and the folders.
 * And only when they are complete: every item a run was asked for (OUT/runs/, runner.ts)
 * must have a result or a recorded failure in one of the folders; otherwise the error
 * names the missing items (and a live process that still holds one).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { finishAnalyze } from './analyze.ts';
import type { ImageMetrics } from '../analysis/aggregate.ts';
import { ERRORS_FILE, IMAGES_SUBDIR, readErrors, readResult, readRunIds, resultPath, RUNS_SUBDIR, type ItemError } from './runner.ts';
import { lockHolder } from './locks.ts';
import { UserError } from '../errors.ts';
import { writeFileAtomicSync } from './outputs.ts';
import { finishAblate, type AblateItem } from './ablate.ts';
import { finishKnockout, type KnockoutItem } from './knockout.ts';
import { finishGate, ROWS_SUBDIR } from './gate.ts';
import type { GateItemResult } from '../analysis/gate-aggregate.ts';

type Kind = 'analyze' | 'knockout' | 'ablate' | 'gate';
type Result = Record<string, unknown> & { options?: Record<string, unknown> };

function kindOf(r: Result, where: string): Kind {
  if ('contextualization' in r) return 'analyze';
  if ('flows' in r) return 'knockout';
  if ('ablation' in r) return 'ablate';
  if ('separation' in r) return 'gate';
  throw new UserError(`${where}: not a result of analyze, knockout, ablate or gate`);
}

/** The fields two runs must share to be merged: model, family, version, and every option. */
function signature(r: Result): [string, unknown][] {
  return [
    ['model', r.model],
    ['model_family', r.model_family],
    ['phaselens_version', r.phaselens_version],
    ...Object.entries(r.options ?? {}).map(([k, v]): [string, unknown] => [`options.${k}`, v]),
  ];
}

export function merge(inputs: readonly string[], out: string): { kind: Kind; items: number; report: string } {
  if (inputs.length === 0) throw new UserError('merge: give at least one output folder');
  const results = new Map<string, { id: string; r: Result; from: string }>();
  let ref: { sig: Map<string, string>; from: string; kind: Kind } | undefined;
  for (const dir of inputs) {
    const images = join(dir, IMAGES_SUBDIR);
    if (!existsSync(images)) throw new UserError(`${dir}: no ${IMAGES_SUBDIR}/ folder (not an output folder of analyze, knockout, ablate or gate)`);
    for (const f of readdirSync(images).filter((n) => n.endsWith('.json')).sort()) {
      const id = f.slice(0, -'.json'.length);
      const r = readResult(dir, id) as Result | null;
      if (!r) continue; // unreadable or partial: the run would redo it too
      const where = join(images, f);
      const kind = kindOf(r, where);
      const sig = new Map(signature(r).map(([k, v]) => [k, JSON.stringify(v)]));
      if (!ref) ref = { sig, from: where, kind };
      else {
        if (kind !== ref.kind) throw new UserError(`merge: ${where} is a ${kind} result, ${ref.from} a ${ref.kind} result`);
        for (const k of new Set([...ref.sig.keys(), ...sig.keys()])) {
          if (ref.sig.get(k) !== sig.get(k)) throw new UserError(`merge: the runs differ in ${k}: ${ref.sig.get(k) ?? 'absent'} in ${ref.from}, ${sig.get(k) ?? 'absent'} in ${where}`);
        }
      }
      const seen = results.get(id);
      if (seen && JSON.stringify(seen.r) !== JSON.stringify(r)) throw new UserError(`merge: item ${id} has different results in ${seen.from} and ${dir}`);
      if (!seen) results.set(id, { id, r, from: dir });
    }
  }
  if (!ref) throw new UserError(`merge: no results in ${inputs.join(', ')}`);
  const errors: ItemError[] = inputs.flatMap((d) => readErrors(d)).filter((e) => !results.has(e.id));
  requireComplete(inputs, results, errors);
  const all = [...results.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  mkdirSync(join(out, IMAGES_SUBDIR), { recursive: true });
  for (const { id, r, from } of all) if (resolve(from) !== resolve(out)) writeFileAtomicSync(resultPath(out, id), JSON.stringify(r) + '\n');
  // gate on a labelled set: each result's candidate rows travel with it (the overlap is over all of them)
  for (const { id, from } of all) {
    const rows = join(from, ROWS_SUBDIR, `${id}.safetensors`);
    if (ref.kind !== 'gate' || resolve(from) === resolve(out) || !existsSync(rows)) continue;
    mkdirSync(join(out, ROWS_SUBDIR), { recursive: true });
    copyFileSync(rows, join(out, ROWS_SUBDIR, `${id}.safetensors`));
  }
  // the item lists travel along, so the merged folder can be checked (and merged) again
  mkdirSync(join(out, RUNS_SUBDIR), { recursive: true });
  for (const dir of inputs.filter((d) => resolve(d) !== resolve(out))) {
    for (const f of readdirSync(join(dir, RUNS_SUBDIR))) copyFileSync(join(dir, RUNS_SUBDIR, f), join(out, RUNS_SUBDIR, f));
  }
  writeFileAtomicSync(join(out, ERRORS_FILE), JSON.stringify({ errors }, null, 1) + '\n');
  const data = `merged from ${inputs.join(', ')}`;
  const rs = all.map((x) => x.r);
  let report: string;
  if (ref.kind === 'analyze') {
    const smooth = Number(rs[0].options?.phase_smoothing ?? 1);
    report = finishAnalyze(out, rs as unknown as ImageMetrics[], errors.map((e) => ({ image: e.image ?? e.id, error: e.message })), smooth, { dataset: data });
  } else if (ref.kind === 'knockout') report = finishKnockout(out, rs as unknown as KnockoutItem[], { data, failed: errors.length });
  else if (ref.kind === 'gate') report = finishGate(out, rs as unknown as GateItemResult[], { data, failed: errors.length });
  else report = finishAblate(out, rs as unknown as AblateItem[], { data, failed: errors.length });
  return { kind: ref.kind, items: rs.length, report };
}

/** Every item the runs were asked for has a result or a recorded failure in one of the folders. */
function requireComplete(inputs: readonly string[], results: ReadonlyMap<string, unknown>, errors: readonly ItemError[]): void {
  const failed = new Set(errors.map((e) => e.id));
  const missing: string[] = [];
  for (const dir of inputs) {
    const asked = readRunIds(dir);
    if (asked === null) throw new UserError(`merge: ${dir} has no ${RUNS_SUBDIR}/ record of the items its runs were asked for (made by an older phaselens), so missing items cannot be told; re-run its command once (finished items are kept) to record them`);
    for (const id of asked) {
      if (results.has(id) || failed.has(id)) continue;
      const holder = lockHolder(join(dir, IMAGES_SUBDIR, `${id}.lock`));
      missing.push(`${id} in ${dir}${holder ? ` (held by ${holder}, still running)` : ''}`);
    }
  }
  if (missing.length > 0) {
    const shown = [...new Set(missing)];
    throw new UserError(`merge: ${shown.length} item(s) have neither a result nor a recorded failure: ${shown.slice(0, 10).join(', ')}${shown.length > 10 ? ', …' : ''}; re-run (or requeue) the run that was asked for them, then merge`);
  }
}
