/** Bad input to `phaselens dump` / `generate`: a clear message and exit 2, never a stack trace. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const work = mkdtempSync(join(tmpdir(), 'phaselens-input-'));
const model = join(work, 'tiny');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, err: r.stderr, out: r.stdout };
}

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: model, seed: 1 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('LLaVA input errors', () => {
  const out = join(work, 'x.safetensors');
  const cases: [string, string[], RegExp][] = [
    ['an image but no <image> in the prompt', ['--image', IMAGE, '--prompt', 'hello there'], /prompt has no <image> token/],
    ['<image> but no image', ['--prompt', 'USER: <image>\nhi ASSISTANT:'], /<image> token\(s\) but no image was given/],
    ['more <image> tokens than images', ['--image', IMAGE, '--prompt', '<image> and <image>'], /2 <image> tokens for one image/],
    ['an id outside the vocabulary', ['--image', IMAGE, '--input-ids', '1,32000,99999'], /99999/],
    ['a prompt longer than max_position_embeddings', ['--image', IMAGE, '--input-ids', ['1', '32000', ...Array(4100).fill('450')].join(',')], /max_position_embeddings = 4096/],
    ['a file that is not an image', ['--image', CLI, '--prompt', '<image>'], /not a PNG or JPEG|not an image|unrecognised/i],
    ['a missing checkpoint folder', ['--model', join(work, 'nope')], /config\.json|no such/i],
  ];
  for (const [what, args, msg] of cases) {
    it(`dump: ${what}`, () => {
      const withModel = args.includes('--model') ? args : ['--model', model, ...args];
      const r = cli('dump', ...withModel, '--out', out, ...(args.includes('--prompt') || args.includes('--input-ids') ? [] : ['--prompt', '<image>']));
      expect(r.err).toMatch(msg);
      expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.code).toBe(2);
    });
  }

  it('generate: too many new tokens for the context', () => {
    const r = cli('generate', '--model', model, '--image', IMAGE, '--prompt', '<image>', '--max-new-tokens', '5000');
    expect(r.err).toMatch(/exceed max_position_embeddings/);
    expect(r.code).toBe(2);
  });

  it('generate: answers and reports tokens/s on a good input', () => {
    const r = cli('generate', '--model', model, '--image', IMAGE, '--prompt', 'What is this?', '--chat', '--max-new-tokens', '3');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/prefill: \d+ tokens .* tokens\/s/);
    // compilation is outside the times: a warm-up pass first, no pipeline created while timed
    expect(r.err).toMatch(/timed after an untimed warm-up pass .*, 0 created while timed/);
  });
});
