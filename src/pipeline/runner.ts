/**
 * The resumable per-image loop of `phaselens analyze`.
 *
 * Output folder layout (what the runner owns):
 *
 * ```
 * OUT/images/<id>.json   one result per finished item (whatever `work` returned, as JSON)
 * OUT/errors.json        {"errors": [{"id", "image", "message", "time"}]}: items whose last
 *                        attempt failed with a UserError (an unreadable image, ...) and that
 *                        have no result yet
 * ```
 *
 * - Atomic results: the JSON is written to a hidden temporary file in `OUT/images/`
 *   (`.<id>.json.<pid>.<n>.tmp`), flushed to disk, then renamed over `<id>.json`. A reader,
 *   or a run killed at any moment, sees either no result or a complete one. Temporary files
 *   left by a killed run are deleted at the start of the next run.
 * - Resume: an item whose `<id>.json` exists and parses as a JSON object is skipped
 *   (checked before the loop, so the progress bar counts only the work left). A file that
 *   does not parse is redone.
 * - Errors: a `UserError` thrown by `work` (unreadable or missing image, bad input) is
 *   recorded in `errors.json` (rewritten atomically after each failure), printed, and the
 *   run goes on. Any other error is a bug: the run stops, with `errors.json` up to date and
 *   no partial result file, and the error propagates. A failed item is retried by the next
 *   run; its entry leaves `errors.json` once it succeeds. Entries of items that are not in
 *   this run (a different `--limit`) are kept.
 * - Items run one at a time, in the order given. Several processes may share an output
 *   folder: each item is locked while it runs (locks.ts); a live process's item is left to
 *   it (counted as `busy`), a killed process's stale lock and temporary files are cleared.
 *   errors.json is rewritten whole by each process: an entry another process wrote at the
 *   same moment can be lost (the item is retried by the next run), never half-written.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SAFE_ID } from '../data/item.ts';
import { UserError } from '../errors.ts';
import { firstNonFinite } from '../util/non-finite.ts';
import { deadHere, isStale, ownerPid, tryLock, unlock } from './locks.ts';
import { createProgress, type Progress, type ProgressOptions } from './progress.ts';

/** What the runner needs of an item (src/data/item.ts `DataItem` has it). */
export interface RunItem {
  /** File-name safe (`[A-Za-z0-9_-][A-Za-z0-9._-]*`), unique in the run. */
  id: string;
  /** The image path, for error records. */
  image?: string;
}

export interface ItemError {
  id: string;
  image?: string;
  message: string;
  /** ISO 8601 time of the failure. */
  time: string;
}

export interface RunSummary {
  /** Items in this run. */
  total: number;
  /** Items finished in this run (a result written). */
  done: number;
  /** Items that already had a result. */
  skipped: number;
  /** Items that failed in this run (recorded in errors.json). */
  failed: number;
  /** This run's failures. */
  errors: ItemError[];
  /** Items left alone because another live process held their lock. */
  busy: number;
  /** The run stopped early on SIGTERM (what Slurm sends at preemption or the time limit): re-run to resume. */
  stopped: boolean;
}

export interface RunOptions {
  /** Progress on stderr (default true); an object configures it (`label`, `stream`, ...). */
  progress?: boolean | ProgressOptions;
  /** Called after each result is written (e.g. to aggregate on the fly). */
  onResult?: (id: string, result: object) => void;
}

export const IMAGES_SUBDIR = 'images';
export const ERRORS_FILE = 'errors.json';

/** `.<name>.<pid>.<n><hex>.tmp`: the writer's pid tells whether the file is still being written. */
const TEMP = /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/;
const LOCK = /\.lock$/;

/** `OUT/images/<id>.json`. */
export function resultPath(outDir: string, id: string): string {
  return join(outDir, IMAGES_SUBDIR, `${id}.json`);
}

/** A finished result (parsed), or null when there is none or it does not parse as a JSON object. */
export function readResult(outDir: string, id: string): object | null {
  const p = resultPath(outDir, id);
  if (!existsSync(p)) return null;
  try {
    const v: unknown = JSON.parse(readFileSync(p, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** The recorded failures of an output folder (empty when there is no errors.json). */
export function readErrors(outDir: string): ItemError[] {
  const p = join(outDir, ERRORS_FILE);
  if (!existsSync(p)) return [];
  try {
    const j = JSON.parse(readFileSync(p, 'utf8')) as { errors?: unknown };
    return Array.isArray(j?.errors) ? (j.errors as ItemError[]) : [];
  } catch {
    return []; // not ours or damaged: rebuilt from this run
  }
}

let tempCounter = 0;

/** Write `text` to `path` atomically: a temporary file in the same folder, fsync, rename. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${ownerPid()}.${tempCounter++}${randomBytes(3).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Run `work` on every item that has no result yet in `outDir`, writing each result to
 * `OUT/images/<id>.json` as it finishes (see the file comment for the rules).
 */
export async function runItems<I extends RunItem>(
  items: readonly I[],
  outDir: string,
  work: (item: I) => Promise<object>,
  opts: RunOptions = {},
): Promise<RunSummary> {
  const seen = new Set<string>();
  for (const it of items) {
    if (!SAFE_ID.test(it.id)) throw new Error(`runItems: item id ${JSON.stringify(it.id)} is not file-name safe (use safeId from src/data/item.ts)`);
    if (seen.has(it.id)) throw new Error(`runItems: item id ${JSON.stringify(it.id)} appears twice`);
    seen.add(it.id);
  }
  const imagesDir = join(outDir, IMAGES_SUBDIR);
  try {
    mkdirSync(imagesDir, { recursive: true });
  } catch (e) {
    throw new UserError(`${imagesDir}: cannot create the output folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // leftovers of killed runs; another live process's files are its own
  for (const n of readdirSync(imagesDir)) {
    const tmp = TEMP.exec(n);
    if ((tmp && deadHere(Number(tmp[1]))) || (LOCK.test(n) && isStale(join(imagesDir, n)))) rmSync(join(imagesDir, n), { force: true });
  }

  // Errors of earlier runs: keep those of items that are still without a result.
  const errors = new Map<string, ItemError>();
  for (const e of readErrors(outDir)) if (typeof e?.id === 'string' && !existsSync(resultPath(outDir, e.id))) errors.set(e.id, e);
  const saveErrors = () => writeFileAtomic(join(outDir, ERRORS_FILE), JSON.stringify({ errors: [...errors.values()] }, null, 1) + '\n');
  await saveErrors();

  const todo = items.filter((it) => readResult(outDir, it.id) === null);
  const summary: RunSummary = { total: items.length, done: 0, skipped: items.length - todo.length, failed: 0, errors: [], busy: 0, stopped: false };
  // SIGTERM: finish the item in hand (its file is written atomically), then stop cleanly.
  // It may come twice (Slurm signals every process of the job, src/cli/phaselens.mjs passes
  // its own on): the repeats change nothing; SIGKILL is the way to stop at once.
  const onTerm = () => {
    if (summary.stopped) return;
    summary.stopped = true;
    progress?.log(`phaselens: SIGTERM: stopping after the current item; re-run the same command to resume`);
  };
  process.on('SIGTERM', onTerm);
  const progress: Progress | null = opts.progress === false ? null : createProgress(todo.length, opts.progress === true || opts.progress === undefined ? {} : opts.progress);
  if (summary.skipped > 0) progress?.log(`resuming in ${outDir}: ${summary.skipped} of ${items.length} already done, ${todo.length} to go`);

  const fail = async (it: I, message: string) => {
    const rec: ItemError = { id: it.id, ...(it.image !== undefined && { image: it.image }), message, time: new Date().toISOString() };
    errors.set(it.id, rec);
    summary.errors.push(rec);
    summary.failed++;
    await saveErrors();
    progress?.log(`phaselens: ${it.id}: ${message} (recorded in ${join(outDir, ERRORS_FILE)}; going on)`);
    progress?.tick(true);
  };

  try {
    for (const it of todo) {
      if (summary.stopped) break;
      const lock = join(imagesDir, `${it.id}.lock`);
      // another process on this folder may have taken or finished it since the list was made
      if (!tryLock(lock)) {
        summary.busy++;
        progress?.tick();
        continue;
      }
      if (readResult(outDir, it.id) !== null) {
        unlock(lock);
        summary.skipped++;
        progress?.tick();
        continue;
      }
      try {
        await runOne(it);
      } finally {
        unlock(lock);
      }
    }
  } finally {
    process.off('SIGTERM', onTerm);
    progress?.stop();
  }
  return summary;

  async function runOne(it: I): Promise<void> {
    let result: object;
    try {
      result = await work(it);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      await fail(it, e.message);
      return;
    }
    if (typeof result !== 'object' || result === null || Array.isArray(result)) {
      throw new Error(`runItems: work(${it.id}) returned ${Array.isArray(result) ? 'an array' : String(result)}, not a JSON object`);
    }
    const text = JSON.stringify(result) + '\n'; // before any file is opened: a throw here leaves nothing behind
    // (after stringify, so the result has no cycles) JSON would write NaN and Inf as null: a non-finite number is a failed item, never a silent gap
    const bad = firstNonFinite(result);
    if (bad !== null) {
      await fail(it, `non-finite value (${bad.value}) at ${bad.path}`);
      return;
    }
    await writeFileAtomic(resultPath(outDir, it.id), text);
    summary.done++;
    if (errors.delete(it.id)) await saveErrors();
    opts.onResult?.(it.id, result);
    progress?.tick();
  }
}
