#!/usr/bin/env node
// Runs the whole vitest suite and ends with one plain "N passed, N failed, N skipped" line
// and the wall time; records each file's duration for test/sequencer.ts (longest first).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

mkdirSync('test/.cache', { recursive: true });
const report = 'test/.cache/vitest.json';
const t0 = Date.now();
const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let summary = 'vitest wrote no report';
try {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  summary = `${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests + j.numTodoTests} skipped`;
  const durations = Object.fromEntries(
    j.testResults.map((f) => [relative(process.cwd(), f.name), Math.round(f.endTime - f.startTime)]).sort((a, b) => b[1] - a[1]),
  );
  writeFileSync('test/.cache/durations.json', JSON.stringify(durations, null, 1) + '\n');
} catch {}
console.log(`${summary} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exit(r.status ?? 1);
