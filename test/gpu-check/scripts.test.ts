/**
 * Small pieces of the one-shot GPU check that need neither a GPU run nor transformers:
 * device-bench's argument handling and its `--mode inputs` (the prepared inputs the HF
 * side reads, written without opening a GPU), and hf_bench.py's config loading, which
 * casts int-for-float fields (JSON from JavaScript writes 1.0 as 1, and transformers 5's
 * strict config classes refuse that) — checked with a stand-in config class that raises
 * transformers 5's message. Runs the venv's python (.ci/hf-venv.sh); transformers is not imported.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hfPython } from '../../bench/hf.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const IMAGE = join(ROOT, 'test/fixtures/images/000000039769.png');

function bench(args: string[]) {
  const r = spawnSync(process.execPath, ['src/cli/run-ts.mjs', 'bench/gpu/device-bench.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, all: `${r.stdout}${r.stderr}` };
}

describe('bench/gpu/device-bench.ts without a GPU run', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-check-scripts-'));
  const tiny = join(tmp, 'tiny');
  beforeAll(async () => {
    await makeTiny({ arch: 'instructblip', out: tiny, seed: 2 });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('--mode inputs writes the prepared ids, groups and pixels (InstructBLIP: with the Q-Former ids)', () => {
    const r = bench(['--model', tiny, '--image', IMAGE, '--mode', 'inputs', '--inputs-out', join(tmp, 'in')]);
    expect(r.status).toBe(0);
    expect(r.all).not.toContain('device-bench:'); // no GPU was opened
    const j = JSON.parse(readFileSync(join(tmp, 'in.json'), 'utf8'));
    expect(j.image).toEqual([0, 8]); // the 8 query outputs come first
    expect(j.bos).toBe(8);
    expect(j.qformer_ids[0]).toBe(101); // [CLS]
    expect(j.query).toBe(j.ids.length - 1);
    expect(j.text).toEqual(Array.from({ length: j.ids.length - 8 }, (_, i) => i + 8));
    const [c, h, w] = j.pixel_shape;
    expect(statSync(join(tmp, 'in.f32')).size).toBe(4 * c * h * w);
  });

  for (const [what, args, msg] of [
    ['an unknown mode', ['--model', 'x', '--image', 'y', '--mode', 'fast'], /must be time, profile or inputs/],
    ['zero reps', ['--model', 'x', '--image', 'y', '--reps', '0'], /must be a positive integer/],
    ['a bad peak', ['--model', 'x', '--image', 'y', '--peak-gbs', '-1'], /must be a positive number/],
    ['no --model', ['--image', 'y'], /required option '--model <dir>'/],
  ] as const) {
    it(`refuses ${what} (exit 2)`, () => {
      const r = bench([...args]);
      expect(r.all).toMatch(msg);
      expect(r.status).toBe(2);
    });
  }
});

describe('hf_bench.py load_config', () => {
  const script = `
import json, os, sys, tempfile
sys.path.insert(0, ${JSON.stringify(join(ROOT, 'bench/gpu'))})
import hf_bench

class Strict:
    """Refuses ints where floats are declared, with transformers 5's message."""
    FLOATS = ("initializer_factor", "layer_norm_eps")
    @classmethod
    def from_dict(cls, d):
        def walk(x):
            for k, v in x.items():
                if k in cls.FLOATS and isinstance(v, int):
                    raise ValueError(f"Validation error for field '{k}':\\n    TypeError: Field '{k}' expected float, got int (value: {v})")
                if isinstance(v, dict):
                    walk(v)
        walk(d)
        return d

class Model:
    config_class = Strict

d = tempfile.mkdtemp()
json.dump({"model_type": "instructblip", "initializer_factor": 1, "num_query_tokens": 8,
           "qformer_config": {"layer_norm_eps": 0, "hidden_size": 64}}, open(os.path.join(d, "config.json"), "w"))
c = hf_bench.load_config(Model, d)
print(json.dumps({"c": c, "types": [type(c["initializer_factor"]).__name__, type(c["qformer_config"]["layer_norm_eps"]).__name__, type(c["num_query_tokens"]).__name__]}))
json.dump({"model_type": "llava", "vocab_size": "many"}, open(os.path.join(d, "config.json"), "w"))
class Other:
    class config_class:
        @staticmethod
        def from_dict(d):
            raise ValueError("Field 'vocab_size' expected int, got str")
try:
    hf_bench.load_config(Other, d)
    print("no error")
except ValueError as e:
    print("raised:", e)
`;

  it('casts the int-for-float fields the config class names, at any depth, and nothing else', () => {
    const r = spawnSync(hfPython(), ['-c', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const [first, second] = r.stdout.trim().split('\n');
    const j = JSON.parse(first);
    expect(j.types).toEqual(['float', 'float', 'int']);
    expect(j.c.qformer_config.hidden_size).toBe(64);
    expect(second).toBe("raised: Field 'vocab_size' expected int, got str"); // other errors pass through
  });
});
