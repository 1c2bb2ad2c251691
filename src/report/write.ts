/** Whole-or-nothing file writes for report outputs: a temporary file, then a rename. */
import { renameSync, writeFileSync } from 'node:fs';

export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
