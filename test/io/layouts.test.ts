/**
 * The key layouts (src/io/layouts.ts): every layout of each family maps a full tensor
 * table back onto the one canonical tree and is the one detected; make-tiny writes both
 * folder layouts with the same numbers; a folder in no layout is refused naming the
 * closest layout and its first unmatched keys. (Folders transformers itself wrote:
 * hf-saved.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { describeMatch } from '../../src/io/expected-tensors.ts';
import { formatReport } from '../../src/io/inspect.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { canonicalName, storedName } from '../../src/io/layouts.ts';
import { nodeDirectory, openFileSource } from '../../src/io/source-node.ts';
import { keyLayout, makeTiny, tinyConfigJson } from '../../weights-tools/make-tiny.ts';
import { LAYOUTS, checkCheckpoint, expectedTensors, matchCheckpoint, parseConfig, validateCheckpoint } from '../../src/models/registry.ts';
import type { Family } from '../../src/models/vlm.ts';

const root = mkdtempSync(join(tmpdir(), 'phaselens-layouts-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const families: Family[] = ['llava', 'instructblip'];
const run = promisify(execFile);
const CLI = new URL('../../src/cli/phaselens.mjs', import.meta.url).pathname;
const IMAGE = new URL('../fixtures/images/000000039769.png', import.meta.url).pathname;

describe.each(families)('%s layouts', (family) => {
  const config = parseConfig(JSON.stringify(tinyConfigJson(family)));
  const expected = expectedTensors(config);

  it.each(LAYOUTS[family].map((l) => [l.id, l] as const))('%s: every name round-trips and the layout is detected', (_, layout) => {
    const table = new Map(expected.map((e) => [storedName(layout, e.name), { shape: e.shape }]));
    expect(table.size).toBe(expected.length); // no two tensors share a stored name
    for (const e of expected) expect(canonicalName(layout, storedName(layout, e.name))).toBe(e.name);
    const m = matchCheckpoint(config, table);
    expect(m.layout.id).toBe(layout.id);
    expect(describeMatch(m, expected.length, table.size)).toEqual([]);
  });
});

describe('llava layouts, by their names', () => {
  const config = parseConfig(JSON.stringify(tinyConfigJson('llava')));
  const expected = expectedTensors(config);
  const renamed = (f: (n: string) => string) => new Map(expected.map((e) => [f(e.name), { shape: e.shape }]));

  it('reads the transformers >= 4.52 module tree with and without vision_model.', () => {
    const modern = (keepVisionModel: boolean) => (n: string) =>
      n === 'language_model.lm_head.weight'
        ? 'lm_head.weight'
        : n.startsWith('language_model.model.')
          ? `model.language_model.${n.slice('language_model.model.'.length)}`
          : `model.${keepVisionModel ? n : n.replace('vision_tower.vision_model.', 'vision_tower.')}`;
    for (const keep of [true, false]) {
      const m = matchCheckpoint(config, renamed(modern(keep)));
      expect(m.layout.id).toBe('transformers4.52');
      expect(m.missing.length + m.unmatched.length + m.unexpected.length).toBe(0);
      expect(m.found.get('vision_tower.vision_model.pre_layrnorm.weight')).toBe(keep ? 'model.vision_tower.vision_model.pre_layrnorm.weight' : 'model.vision_tower.pre_layrnorm.weight');
      expect(m.found.get('language_model.lm_head.weight')).toBe('lm_head.weight');
    }
  });

  it("reads transformers 5's save_pretrained names: no vision_model., the rest as the hub", () => {
    const m = matchCheckpoint(config, renamed((n) => n.replace('vision_tower.vision_model.', 'vision_tower.')));
    expect(m.layout.id).toBe('transformers5');
    expect(m.missing.length + m.unmatched.length + m.unexpected.length).toBe(0);
    expect(m.found.get('vision_tower.vision_model.embeddings.class_embedding')).toBe('vision_tower.embeddings.class_embedding');
    expect(m.found.get('language_model.model.norm.weight')).toBe('language_model.model.norm.weight');
  });

  it('a mix of two layouts fits none: the closest is named with the keys it leaves', () => {
    // the hub's names, but the projector saved in the transformers >= 4.52 tree
    const m = matchCheckpoint(config, renamed((n) => (n.startsWith('multi_modal_projector.') ? `model.${n}` : n)));
    expect(m.layout.id).toBe('hub');
    expect(m.unmatched).toEqual(['model.multi_modal_projector.linear_1.weight', 'model.multi_modal_projector.linear_1.bias', 'model.multi_modal_projector.linear_2.weight', 'model.multi_modal_projector.linear_2.bias']);
    const lines = describeMatch(m, expected.length, expected.length);
    expect(lines[0]).toBe(
      `4 of ${expected.length} tensor names fit no known layout; the closest is "hub" (${m.layout.writtenBy}), which maps ${expected.length - 4} of ${expected.length}; ` +
        'first unmatched: model.multi_modal_projector.linear_1.weight, model.multi_modal_projector.linear_1.bias, model.multi_modal_projector.linear_2.weight, model.multi_modal_projector.linear_2.bias',
    );
    // the missing ones are named as the closest layout would store them
    expect(lines[1]).toMatch(/^4 of \d+ expected tensors are missing: multi_modal_projector\.linear_1\.weight \[64, 32\]/);
  });

  it('a missing tensor of a transformers5 folder is named the transformers5 way', () => {
    const table = renamed((n) => n.replace('vision_tower.vision_model.', 'vision_tower.'));
    table.delete('vision_tower.pre_layrnorm.bias');
    const lines = describeMatch(matchCheckpoint(config, table), expected.length, table.size);
    expect(lines).toEqual([`1 of ${expected.length} expected tensors are missing: vision_tower.pre_layrnorm.bias [32]`]);
  });
});

describe('make-tiny --layout', () => {
  it.each(families)('%s: hub and transformers5 folders validate and hold the same tensors under the canonical names', async (arch) => {
    const hub = await validateCheckpoint(nodeDirectory((await makeTiny({ arch, out: join(root, `${arch}-hub`), seed: 5, dtype: 'f16' })).dir));
    const t5 = await validateCheckpoint(nodeDirectory((await makeTiny({ arch, out: join(root, `${arch}-t5`), seed: 5, dtype: 'f16', layout: 'transformers5' })).dir));
    expect(hub.match.layout.id).toBe('hub');
    expect(t5.match.layout.id).toBe(keyLayout(arch, 'transformers5').id);
    expect(t5.match.layout.id).toBe(arch === 'llava' ? 'transformers5' : 'hub');
    expect(t5.match.found.size).toBe(hub.match.found.size);
    for (const name of hub.match.found.keys()) {
      const [a, b] = [await hub.checkpoint.readTensor(name), await t5.checkpoint.readTensor(name)];
      expect(Buffer.from(a).equals(Buffer.from(b)), name).toBe(true);
    }
    if (arch === 'llava') expect(t5.checkpoint.tensors.has('vision_tower.encoder.layers.0.mlp.fc1.weight')).toBe(true);
    await hub.checkpoint.close();
    await t5.checkpoint.close();
  });

  it('inspect names the layout it found', async () => {
    const r = await checkCheckpoint(nodeDirectory(join(root, 'llava-t5')));
    await r.checkpoint.close();
    const text = formatReport('t5', r);
    expect(text).toMatch(/^layout +transformers5 \(transformers 5's save_pretrained\)$/m);
    // parameters are counted per module through the canonical names
    expect(text).toMatch(/ {2}vision tower +46,878/);
    expect(text).toMatch(/vision_tower\.encoder\.layers\.\{0\.\.2\}\.mlp\.fc1\.weight/);
  });

  it('a folder in no layout is a UserError naming the closest layout and the unmatched keys', async () => {
    const out = join(root, 'mixed');
    await makeTiny({ arch: 'llava', out, seed: 1 });
    // rename one tensor in the safetensors header (same length, so offsets stay valid)
    const f = join(out, 'model.safetensors');
    const bytes = readFileSync(f);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + n).toString('utf8').replace('"vision_tower.vision_model.post_layernorm.bias"', '"visual_tower.vision_model.post_layernorm.bias"');
    writeFileSync(f, Buffer.concat([bytes.subarray(0, 8), Buffer.from(header), bytes.subarray(8 + n)]));
    const e = await validateCheckpoint(nodeDirectory(out)).catch((x) => x);
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toMatch(/1 of 89 tensor names fit no known layout; the closest is "hub" \(.*\), which maps 88 of 89; first unmatched: visual_tower\.vision_model\.post_layernorm\.bias$/m);
    expect(e.message).toMatch(/1 of 89 expected tensors are missing: vision_tower\.vision_model\.post_layernorm\.bias \[32\]/);
  });

  it('the model files load through the map: dump gives the same tensors from both folders (lavapipe)', async () => {
    const dumps: Map<string, Uint8Array>[] = [];
    for (const layout of ['hub', 't5']) {
      const out = join(root, `dump-${layout}.safetensors`);
      await run(process.execPath, [CLI, 'dump', '--model', join(root, `llava-${layout}`), '--image', IMAGE, '--prompt', 'USER: <image>\nWhat is this? ASSISTANT:', '--out', out], {
        env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() },
      });
      const f = await SafetensorsFile.open(await openFileSource(out));
      dumps.push(new Map(await Promise.all([...f.tensors.keys()].map(async (k) => [k, await f.readTensor(k)] as const))));
      await f.close();
    }
    expect([...dumps[1].keys()]).toEqual([...dumps[0].keys()]);
    expect(dumps[0].size).toBeGreaterThan(5);
    for (const [k, v] of dumps[0]) expect(Buffer.from(dumps[1].get(k)!).equals(Buffer.from(v)), k).toBe(true);
  }, 120_000);
});
