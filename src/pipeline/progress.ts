/**
 * Progress of a long per-image run on stderr, with rate and ETA.
 *
 * - stderr is a TTY: a `cli-progress` bar redrawn in place (10 times a second),
 *   `images [=======-------] 40/400 10% | 1.92 s/img | ETA 11m 31s | 1 failed`;
 *   `log()` lines appear above the bar.
 * - otherwise (a log file, CI): one such line each time another ~10% of the items is
 *   finished (every item when there are fewer than 10), and `log()` lines as they come.
 *
 * Items another process holds (runner.ts) are not counted: the status names their holders
 * (`| 1 held by pid 4711`) until they are done or taken over, and the last line says it.
 *
 * Rate and ETA count only the items processed in this run (a resumed run's skipped items
 * are not in `total`), measured from `createProgress` to the latest `tick`; the rate reads
 * `x.xx img/s` when at least one item a second is done, else `x.xx s/img`.
 */
import cliProgress from 'cli-progress';

export interface ProgressOptions {
  /** Word before the counts (default `images`). */
  label?: string;
  /** Unit in the rate (default `img`). */
  unit?: string;
  /** Where to write (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Force the bar (true) or the 10% lines (false); default: whether `stream` is a TTY. */
  tty?: boolean;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

export interface Progress {
  /** One more item finished (`failed` counts it as a failure in the status). */
  tick(failed?: boolean): void;
  /** The items another process holds (not finished, not counted), by holder: `| 2 held by pid 123` in the status. */
  held(holders: readonly string[]): void;
  /** A message line (a failed image, a warning) that does not break the bar. */
  log(line: string): void;
  /** Final redraw; call once at the end (also after an exception). */
  stop(): void;
}

export function createProgress(total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? !!stream.isTTY;
  const now = opts.now ?? Date.now;
  const label = opts.label ?? 'images';
  const unit = opts.unit ?? 'img';
  const start = now();
  let done = 0;
  let failed = 0;
  let heldBy = '';
  let lastAt = start;

  // `live`: count the ETA down from the latest tick to now (the bar's redraws between items).
  const stats = (live = false) => {
    const elapsed = (lastAt - start) / 1000;
    const rate = done > 0 && elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? Math.max(0, (total - done) / rate - (live ? (now() - lastAt) / 1000 : 0)) : NaN;
    return {
      rate: formatRate(rate, unit),
      remaining: done >= total ? formatDuration((lastAt - start) / 1000) : Number.isFinite(eta) ? formatDuration(eta) : '?',
      etaWord: done >= total ? 'took' : 'ETA',
      failed: (failed > 0 ? ` | ${failed} failed` : '') + heldBy,
    };
  };

  if (tty) {
    const multi = new cliProgress.MultiBar({
      stream,
      format: `${label} [{bar}] {value}/{total} {percentage}% | {rate} | {etaWord} {remaining}{failed}`,
      barsize: 24,
      linewrap: true, // cli-progress would otherwise turn wrapping off, and leave it off if the run is killed
      hideCursor: false,
      fps: 10,
    });
    const bar = multi.create(total, 0, stats());
    multi.on('update-pre', () => bar.update(done, stats(true)));
    let stopped = false;
    return {
      tick(f = false) {
        done++;
        if (f) failed++;
        lastAt = now();
        bar.update(done, stats());
      },
      held(holders) {
        heldBy = heldText(holders);
        bar.update(done, stats());
      },
      log(line) {
        multi.log(line.endsWith('\n') ? line : line + '\n');
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.update(done, stats());
        multi.update(); // flush log lines still buffered
        multi.stop();
      },
    };
  }

  let lastDecile = 0;
  const line = () => {
    const s = stats();
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    return `${label} ${done}/${total} (${pct}%) | ${s.rate} | ${s.etaWord} ${s.remaining}${s.failed}\n`;
  };
  let stopped = false;
  return {
    tick(f = false) {
      done++;
      if (f) failed++;
      lastAt = now();
      const decile = Math.floor((10 * done) / total);
      if (decile > lastDecile || done === total) {
        lastDecile = decile;
        stream.write(line());
      }
    },
    held(holders) {
      heldBy = heldText(holders);
    },
    log(l) {
      stream.write(l.endsWith('\n') ? l : l + '\n');
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (done < total && (done > 0 || heldBy)) stream.write(line()); // stopped early or items held: say where
    },
  };
}

/** ` | 2 held by pid 123, pid 456` (each holder once), or nothing. */
function heldText(holders: readonly string[]): string {
  return holders.length ? ` | ${holders.length} held by ${[...new Set(holders)].join(', ')}` : '';
}

/** `42s`, `11m 31s`, `2h 05m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `3.40 img/s` at ≥ 1 per second, `1.92 s/img` below, `? s/img` before the first item. */
export function formatRate(perSecond: number, unit: string): string {
  if (!(perSecond > 0)) return `? s/${unit}`;
  return perSecond >= 1 ? `${perSecond.toFixed(2)} ${unit}/s` : `${(1 / perSecond).toFixed(2)} s/${unit}`;
}
