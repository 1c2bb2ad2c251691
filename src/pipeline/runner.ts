/**
 * The resumable per-image loop of `phaselens analyze`, `knockout` and `ablate`.
 *
 * Output folder layout (what the runner owns):
 *
 * ```
 * OUT/images/<id>.json   one result per finished item (whatever `work` returned, as JSON)
 * OUT/errors.json        {"errors": [{"id", "image", "message", "time"}]}: items whose last
 *                        attempt failed with a UserError (an unreadable image, ...) and that
 *                        have no result yet
 * OUT/runs/<hash>.json   {"phaselens_version", "ids"}: the items a run was asked for (one
 *                        file per distinct item list), so `merge` can tell a missing item
 * ```
 *
 * - Atomic results: the JSON is written to a hidden temporary file in `OUT/images/` (named
 *   after its writer, locks.ts), flushed to disk, then renamed over `<id>.json`. A reader,
 *   or a run killed at any moment, sees either no result or a complete one. Temporary files
 *   whose writer is gone are deleted at the start of the next run.
 * - Resume: an item whose `<id>.json` exists and parses as a JSON object is skipped
 *   (checked before the loop, so the progress bar counts only the work left). A file that
 *   does not parse is redone.
 * - Errors: a `UserError` thrown by `work` (unreadable or missing image, bad input) is
 *   recorded in `errors.json` (rewritten atomically after each failure), printed, and the
 *   run goes on. Any other error is a bug: the run stops, with `errors.json` up to date and
 *   no partial result file, and the error propagates. A failed item is retried by the next
 *   run; its entry leaves `errors.json` once it has a result. Entries of items that are not
 *   in this run (a different `--limit`, another shard) are kept.
 * - Several processes may share an output folder: each item is locked while it runs
 *   (locks.ts). An item another live process holds is not counted: it is logged with its
 *   holder, shown in the progress line, and tried again after the others; the run then
 *   polls such items for up to `lockWaitMs`, taking over any whose holder has died.
 *   errors.json is re-read before each rewrite, so other processes' entries survive; two
 *   rewrites at the same moment can still lose one's entry, which the end check catches.
 * - The end check: whatever the locks said, the run reads the folder. A sampled item with
 *   neither a parseable result nor an entry in errors.json is in `summary.missing`, with
 *   why; the caller must not report such a run as complete (src/cli/model-run.ts exits
 *   non-zero).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SAFE_ID } from '../data/item.ts';
import { UserError } from '../errors.ts';
import { firstNonFinite } from '../util/non-finite.ts';
import { VERSION } from '../version.ts';
import { clearStale, isDeadTemp, tempPath, tryLock, unlock } from './locks.ts';
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
  /** Items that already had a result, or that another process finished meanwhile. */
  skipped: number;
  /** Items that failed in this run (recorded in errors.json). */
  failed: number;
  /** This run's failures. */
  errors: ItemError[];
  /** Items without a result and without a recorded failure when the run ended, and why (`held by pid 123`, ...). */
  missing: { id: string; why: string }[];
  /** The run stopped early on SIGTERM (what Slurm sends at preemption or the time limit): re-run to resume. */
  stopped: boolean;
}

export interface RunOptions {
  /** Progress on stderr (default true); an object configures it (`label`, `stream`, ...). */
  progress?: boolean | ProgressOptions;
  /** Called after each result is written (e.g. to aggregate on the fly). */
  onResult?: (id: string, result: object) => void;
  /** How long to wait at the end for items other processes hold (default: PHASELENS_LOCK_WAIT seconds, else 120 s). */
  lockWaitMs?: number;
}

export const IMAGES_SUBDIR = 'images';
export const ERRORS_FILE = 'errors.json';
export const RUNS_SUBDIR = 'runs';
/** How often held items are looked at again at the end of a run. */
const POLL_MS = 200;

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
    return Array.isArray(j?.errors) ? (j.errors as ItemError[]).filter((e) => typeof e?.id === 'string') : [];
  } catch {
    return []; // not ours or damaged: rebuilt from this run
  }
}

/** The ids every run on `outDir` was asked for (OUT/runs/), or null when no run recorded them. */
export function readRunIds(outDir: string): Set<string> | null {
  const dir = join(outDir, RUNS_SUBDIR);
  if (!existsSync(dir)) return null;
  const ids = new Set<string>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    let j: { ids?: unknown };
    try {
      j = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { ids?: unknown };
    } catch (e) {
      throw new UserError(`${join(dir, f)}: unreadable (${(e as Error).message})`);
    }
    if (!Array.isArray(j.ids) || !j.ids.every((id) => typeof id === 'string')) throw new UserError(`${join(dir, f)}: not a list of item ids`);
    for (const id of j.ids as string[]) ids.add(id);
  }
  return ids;
}

/** Records a run's items in OUT/runs/<hash of the ids>.json (the same list, the same file). */
async function writeRunIds(outDir: string, ids: readonly string[]): Promise<void> {
  const path = join(outDir, RUNS_SUBDIR, `${createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 16)}.json`);
  if (existsSync(path)) return;
  mkdirSync(join(outDir, RUNS_SUBDIR), { recursive: true });
  await writeFileAtomic(path, JSON.stringify({ phaselens_version: VERSION, ids }) + '\n');
}

/** Write `text` to `path` atomically: a temporary file in the same folder, fsync, rename. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = tempPath(path);
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

/** Deletes what killed runs left in `outDir`: temporary files of gone writers, stale item locks. */
function clearLeftovers(outDir: string): void {
  for (const sub of ['', IMAGES_SUBDIR, RUNS_SUBDIR, 'figures']) {
    const dir = join(outDir, sub);
    if (!existsSync(dir)) continue;
    for (const n of readdirSync(dir)) {
      if (sub === IMAGES_SUBDIR && n.endsWith('.lock')) clearStale(join(dir, n));
      else if (isDeadTemp(dir, n)) rmSync(join(dir, n), { force: true });
    }
  }
}

function defaultLockWaitMs(): number {
  const s = process.env.PHASELENS_LOCK_WAIT;
  if (s === undefined || s === '') return 120_000;
  if (!/^\d+(\.\d+)?$/.test(s)) throw new UserError(`PHASELENS_LOCK_WAIT=${s}: expected a number of seconds`);
  return Number(s) * 1000;
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
  const lockWaitMs = opts.lockWaitMs ?? defaultLockWaitMs();
  const imagesDir = join(outDir, IMAGES_SUBDIR);
  try {
    mkdirSync(imagesDir, { recursive: true });
  } catch (e) {
    throw new UserError(`${imagesDir}: cannot create the output folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  clearLeftovers(outDir);
  await writeRunIds(outDir, items.map((it) => it.id));

  // This run's outcome per item: its failure, or null once it has a result. errors.json
  // is re-read at each save: entries of other items (other runs, other processes) stay
  // while their item has no result.
  const outcome = new Map<string, ItemError | null>();
  const saveErrors = async () => {
    const all = new Map<string, ItemError>(); // in the file's order, this run's entries replacing theirs
    for (const e of readErrors(outDir)) if (!existsSync(resultPath(outDir, e.id))) all.set(e.id, outcome.get(e.id) ?? e);
    for (const [id, e] of outcome) if (e) all.set(id, e);
    for (const [id, e] of outcome) if (!e) all.delete(id);
    await writeFileAtomic(join(outDir, ERRORS_FILE), JSON.stringify({ errors: [...all.values()] }, null, 1) + '\n');
  };
  await saveErrors();

  const todo = items.filter((it) => readResult(outDir, it.id) === null);
  const summary: RunSummary = { total: items.length, done: 0, skipped: items.length - todo.length, failed: 0, errors: [], missing: [], stopped: false };
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
    outcome.set(it.id, rec);
    summary.errors.push(rec);
    summary.failed++;
    await saveErrors();
    progress?.log(`phaselens: ${it.id}: ${message} (recorded in ${join(outDir, ERRORS_FILE)}; going on)`);
    progress?.tick(true);
  };

  /** Items another live process holds, with their holder. */
  const held = new Map<string, { it: I; holder: string }>();
  const showHeld = () => progress?.held([...held.values()].map((h) => h.holder));
  try {
    for (const it of todo) {
      if (summary.stopped) break;
      const holder = await attempt(it);
      if (holder !== null) {
        held.set(it.id, { it, holder });
        progress?.log(`phaselens: ${it.id}: held by ${holder} (another process working on this folder); looked at again at the end`);
        showHeld();
      }
    }
    // Held items: poll until their holder has finished them, or has died (then take them over), or time is up.
    const deadline = Date.now() + lockWaitMs;
    if (held.size > 0 && !summary.stopped) progress?.log(`phaselens: waiting up to ${Math.round(lockWaitMs / 1000)} s for ${held.size} item(s) held by other processes`);
    while (held.size > 0 && !summary.stopped) {
      for (const { it } of [...held.values()]) {
        if (summary.stopped) break;
        held.delete(it.id); // out of the status line before it is counted
        showHeld();
        const holder = await attempt(it);
        if (holder !== null) held.set(it.id, { it, holder });
      }
      showHeld();
      if (held.size === 0 || Date.now() >= deadline) break;
      await sleep(POLL_MS);
    }
  } finally {
    process.off('SIGTERM', onTerm);
    progress?.stop();
  }

  // The end check, on disk: every item has a result or a recorded failure, or is named here.
  const recorded = new Set([...readErrors(outDir).map((e) => e.id), ...summary.errors.map((e) => e.id)]);
  for (const it of items) {
    if (recorded.has(it.id) || readResult(outDir, it.id) !== null) continue;
    const h = held.get(it.id);
    summary.missing.push({ id: it.id, why: h ? `held by ${h.holder}` : summary.stopped ? 'not run (stopped by SIGTERM)' : 'no result and no recorded failure' });
  }
  return summary;

  /** Locks and runs `it` (or counts it, when another process finished it meanwhile); returns the holder when it is held. */
  async function attempt(it: I): Promise<string | null> {
    const lock = join(imagesDir, `${it.id}.lock`);
    const got = tryLock(lock);
    if (!got.taken) return got.holder;
    try {
      if (readResult(outDir, it.id) !== null) {
        summary.skipped++;
        progress?.tick();
      } else await runOne(it);
    } finally {
      unlock(lock);
    }
    return null;
  }

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
    const hadError = readErrors(outDir).some((e) => e.id === it.id);
    outcome.set(it.id, null);
    if (hadError) await saveErrors();
    opts.onResult?.(it.id, result);
    progress?.tick();
  }
}
