/**
 * Mistakes refused before any work. Output paths (src/cli/output-paths.ts): every command
 * that writes refuses a path it could not write with a one-line message and exit 2, before
 * the checkpoint folder is even opened; so are flags that need no model (`--smooth`). The model folder here has a valid config and tokenizer
 * but no weights, so a check made later would end in a different error (the missing
 * weights) and never print the output path's. `patch` also decodes --source/--target before
 * the GPU opens (no "phaselens: GPU" line).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const work = mkdtempSync(join(tmpdir(), 'phaselens-fail-fast-'));
const model = join(work, 'llava');
const noWeights = join(work, 'llava-no-weights');
const aFile = join(work, 'a-file');
const data = `vqa:${join(work, 'q.jsonl')}:${work}`;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, err: r.stderr };
}

/** One line on stderr, exit 2, no stack trace, and neither the GPU nor the weights touched. */
function refusedEarly(r: ReturnType<typeof cli>, msg: RegExp): void {
  expect(r.err).toMatch(msg);
  expect(r.err.trim().split('\n')).toHaveLength(1);
  expect(r.err).not.toMatch(/\n\s+at |phaselens: GPU|loading weights/);
  expect(r.code).toBe(2);
}

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 3 });
  cpSync(model, noWeights, { recursive: true });
  rmSync(join(noWeights, 'model.safetensors'));
  writeFileSync(aFile, 'not a folder\n');
  copyFileSync(IMAGE, join(work, 'cats.png'));
  writeFileSync(join(work, 'q.jsonl'), '{"image": "cats.png", "question": "What is this?", "answers": ["cats"]}\n');
  writeFileSync(join(work, 'not-an-image.png'), 'text, not a PNG\n');
  mkdirSync(join(work, 'folder.safetensors'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('output paths and model-free flags are refused before the model folder opens', () => {
  const dump = ['dump', '--model', noWeights, '--image', IMAGE, '--prompt', '<image>'];
  const cases: [string, () => string[], RegExp][] = [
    ['dump --out in a missing folder', () => [...dump, '--out', join(work, 'missing/x.safetensors')], /--out .*missing\/x\.safetensors: the folder .*missing does not exist/],
    ['dump --out a folder', () => [...dump, '--out', join(work, 'folder.safetensors')], /--out .*folder\.safetensors is a folder/],
    ['dump --out under a file', () => [...dump, '--out', join(aFile, 'x.safetensors')], /a-file is a file, not a folder/],
    ['dump --profile in a missing folder', () => [...dump, '--out', join(work, 'x.safetensors'), '--profile', join(work, 'no/such/dir/t.json')], /--profile .*t\.json: the folder .*no\/such\/dir does not exist/],
    ['generate --profile in a missing folder', () => ['generate', '--model', noWeights, '--image', IMAGE, '--prompt', '<image>', '--profile', join(work, 'no/such/dir/t.json')], /--profile .*does not exist/],
    ['patch --out an existing file', () => ['patch', '--model', noWeights, '--source', IMAGE, '--target', IMAGE, '--prompt', '<image>', '--token', 'image', '--answers', 'cat,dog', '--out', aFile], /--out .*a-file is a file; give a folder/],
    ['analyze --out an existing file', () => ['analyze', '--model', noWeights, '--data', data, '--out', aFile], /--out .*a-file is a file/],
    ['analyze --out below a file', () => ['analyze', '--model', noWeights, '--data', data, '--out', join(aFile, 'sub')], /a-file is a file, so the folder cannot be created/],
    ['knockout --out an existing file', () => ['knockout', '--model', noWeights, '--data', data, '--flow', 'last<-image', '--out', aFile], /--out .*a-file is a file/],
    ['ablate --out an existing file', () => ['ablate', '--model', noWeights, '--data', data, '--token', 'image', '--out', aFile], /--out .*a-file is a file/],
    ['ablate --profile in a missing folder', () => ['ablate', '--model', noWeights, '--data', data, '--token', 'image', '--out', join(work, 'ab'), '--profile', join(work, 'no/t.json')], /--profile .*does not exist/],
    ['merge --out an existing file', () => ['merge', work, '--out', aFile], /--out .*a-file is a file/],
    ['demo --out an existing file', () => ['demo', '--out', aFile], /--out .*a-file is a file/],
    ['slurm --jobs below a file', () => ['slurm', '--shards', '1', '--jobs', join(aFile, 'jobs'), '--', 'analyze', '--model', noWeights, '--data', data, '--out', join(work, 'sl')], /--jobs .*a-file is a file, so the folder cannot be created/],
    ['analyze --smooth 2 (an even window has no centre)', () => ['analyze', '--model', noWeights, '--data', data, '--out', join(work, 'an'), '--smooth', '2'], /--smooth 2: .*odd whole number/],
  ];
  for (const [what, args, msg] of cases) it(what, () => refusedEarly(cli(...args()), msg));
});

describe('patch reads --source and --target before the GPU opens', () => {
  const patch = (source: string, target: string) => ['patch', '--model', model, '--source', source, '--target', target, '--prompt', '<image>', '--token', 'image', '--answers', 'cat,dog', '--out', join(work, 'p')];
  it('a missing --target', () => refusedEarly(cli(...patch(IMAGE, join(work, 'missing.png'))), /missing\.png/));
  it('a --source that is not an image', () => refusedEarly(cli(...patch(join(work, 'not-an-image.png'), IMAGE)), /not-an-image\.png/));
});
