/**
 * `generate`'s tokens/s leave compilation out: `generateTimed` (what the CLI prints) runs an
 * untimed warm-up pass first, so no pipeline is created inside the timed prefill or decode.
 * The instrument is the device's pipeline count around each timed part (`compiled`); a cold
 * `generate` on a fresh device shows it sees compilation (what the CLI used to time).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { generate, generateTimed } from '../../src/models/generate.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { loadDir, prepareFile } from '../helpers/model.ts';

const IMAGE = join(import.meta.dirname, '../fixtures/images/000000039769.png');
const work = mkdtempSync(join(tmpdir(), 'phaselens-generate-timing-'));

beforeAll(async () => {
  await makeTiny({ arch: 'llava', out: join(work, 'llava'), seed: 5 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fresh device (empty pipeline cache) with the model loaded and the prompt prepared. */
async function fresh() {
  const gpu = await createNodeGpu();
  const m = await loadDir(gpu, join(work, 'llava'));
  const x = prepareFile(m, { prompt: 'What is this?', chat: true }, IMAGE);
  return { gpu, m, x };
}

describe('generate timing', () => {
  it('a cold generate compiles inside its timed prefill and decode (the instrument sees it)', async () => {
    const { gpu, m, x } = await fresh();
    const g = await generate(gpu, m, x, 4, undefined, { stopAtEos: false });
    expect(g.compiled.prefill).toBeGreaterThan(0);
    expect(g.compiled.decode).toBeGreaterThan(0);
    gpu.destroy();
  });

  it('generateTimed compiles nothing while timed, and answers as generate does', async () => {
    const { gpu, m, x } = await fresh();
    const g = await generateTimed(gpu, m, x, 4);
    expect(g.compiled).toEqual({ prefill: 0, decode: 0 });
    expect(g.prefillMs).toBeGreaterThan(0);
    expect(g.tokens).toEqual((await generate(gpu, m, x, 4)).tokens);
    gpu.destroy();
  });
});
