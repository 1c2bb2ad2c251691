/**
 * The fuzzer's CI mode: 10⁴ mutated inputs (2500 per target) through the real readers,
 * zero crashes or hangs; and each target both accepts and refuses inputs, so the
 * mutations reach past the first check and are not all trivially rejected. The long
 * mode (10⁶ cases) is `node src/cli/run-ts.mjs test/fuzz/fuzz.ts`. Also a decompression
 * bomb through the CLI: refused from its header, with the limit in the message.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { fuzz } from './fuzz.ts';

const CLI = join(import.meta.dirname, '../../src/cli/phaselens.mjs');
const work = mkdtempSync(join(tmpdir(), 'phaselens-fuzz-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A PNG of signature and IHDR only, declaring width × height (CRC valid). */
function pngHeader(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(25);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, 13);
  ihdr.set([73, 72, 68, 82], 4);
  v.setUint32(8, width);
  v.setUint32(12, height);
  ihdr.set([8, 2, 0, 0, 0], 16);
  let c = 0xffffffff;
  for (const x of ihdr.subarray(4, 21)) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  v.setUint32(21, (c ^ 0xffffffff) >>> 0);
  return Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10, ...ihdr]);
}

describe('fuzzed inputs', () => {
  it('10⁴ cases: every input is accepted or refused with a clear error; none crashes or hangs', async () => {
    const r = await fuzz({ from: 0, to: 2500, seed: 7, hangSeconds: 30 });
    expect(Object.keys(r).sort()).toEqual(['chat_template', 'checkpoint', 'data_sets', 'images']);
    for (const [t, s] of Object.entries(r)) {
      expect(s.findings, t).toEqual([]);
      expect(s.accepted + s.refused, t).toBe(2500);
      expect(s.accepted, `${t} accepts some mutated inputs`).toBeGreaterThan(0);
      expect(s.refused, `${t} refuses some mutated inputs`).toBeGreaterThan(0);
    }
  }, 600_000);

  it('a 40000×40000 PNG of 33 bytes is refused before decoding, with the limit in the message', async () => {
    const model = join(work, 'tiny');
    await makeTiny({ arch: 'llava', seed: 0, out: model });
    const bomb = join(work, 'bomb.png');
    writeFileSync(bomb, pngHeader(40000, 40000));
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'dump', '--model', model, '--image', bomb, '--input-ids', '1,32000', '--out', join(work, 'x.safetensors')], { encoding: 'utf8' });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('40000×40000 = 1600.0 megapixels, over the limit of 100.0 MP');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // 1.6 G pixels decoded would take minutes and 4.8 GB; a refusal is the CLI's start-up alone
    expect(seconds).toBeLessThan(30);
  }, 120_000);
});
