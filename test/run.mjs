#!/usr/bin/env node
// Runs the whole vitest suite and ends with one plain "N passed, N failed, N skipped" line.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

mkdirSync('test/.cache', { recursive: true });
const report = 'test/.cache/vitest.json';
const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let summary = 'vitest wrote no report';
try {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  summary = `${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests + j.numTodoTests} skipped`;
} catch {}
console.log(summary);
process.exit(r.status ?? 1);
