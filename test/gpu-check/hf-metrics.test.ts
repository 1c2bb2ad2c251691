/**
 * The HF side of bench/gpu/run.sh, run on this machine's CPU in the venv of .ci/hf-venv.sh
 * (torch 2.x + transformers 5.x):
 *
 *  - `hf_bench.py perf --device cpu --dtype float32` (run.sh's --hf-device cpu rehearsal)
 *    on the inputs device-bench prepared runs every phase (prefill and decode with eager
 *    and sdpa, analyze), and its analyze metrics — HF's eager forward with
 *    output_hidden_states + output_attentions, then hf_metrics.py — give the numbers of
 *    `phaselens analyze` (run through bench/gpu/device-bench.ts) on tiny LLaVA
 *    checkpoints; the other checkpoint's numbers do not (the comparison can fail);
 *  - hf_bench.py's every mode exits 3 with the message naming where transformers is,
 *    when it cannot be imported (simulated by a shadowing module), and 2 on bad
 *    arguments before that;
 *  - summary.py's table from synthetic results (ratios, missing parts).
 *
 * Tolerances: f32 on both sides, same weights and inputs; contextualization (a mean of
 * cosines, each ≤ 1) within 1e-5 absolute; norm attention within 1e-4 of its largest value;
 * LogitLens probabilities within 1e-5 absolute and the same top-k ids.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hfPython } from '../../bench/hf.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { runPython } from '../reference/pyref.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const IMAGE = join(ROOT, 'test/fixtures/images/000000039769.png');
const HF_BENCH = join(ROOT, 'bench/gpu/hf_bench.py');
const SUMMARY = join(ROOT, 'bench/gpu/summary.py');
const PYTHON = hfPython();

type Json = any;

function maxAbs(a: unknown, b: unknown): number {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return Infinity;
    return a.reduce((m: number, x, i) => Math.max(m, maxAbs(x, b[i])), 0);
  }
  if (a === null && b === null) return 0;
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b);
  return Infinity;
}

function maxOf(a: unknown): number {
  return Array.isArray(a) ? a.reduce((m: number, x) => Math.max(m, maxOf(x)), 0) : Math.abs(a as number);
}

const CASES = [
  { name: 'llava f32, MHA', tiny: { dtype: 'f32' as const, gqa: false } },
  { name: 'llava f16 weights, GQA (4 heads / 2 KV heads)', tiny: { dtype: 'f16' as const, gqa: true } },
];

describe('hf_bench.py perf on the CPU (HF transformers + hf_metrics.py) = phaselens analyze — needs the venv of .ci/hf-venv.sh', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-check-hf-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const pl: Json[] = [];
  const hfM: Json[] = [];

  for (const [ci, c] of CASES.entries()) {
    describe(c.name, () => {
      const dir = join(tmp, `tiny${ci}`);
      let bench: Json;
      let hf: Json;
      let inputs: Json;
      beforeAll(async () => {
        await makeTiny({ arch: 'llava', out: dir, seed: 7 + ci, ...c.tiny });
        const r = spawnSync(process.execPath, ['src/cli/run-ts.mjs', 'bench/gpu/device-bench.ts', '--model', dir, '--image', IMAGE, '--reps', '1', '--new-tokens', '3',
          '--out', join(tmp, `bench${ci}.json`), '--inputs-out', join(tmp, `inputs${ci}`), '--metrics-out', join(tmp, `pl${ci}.json`)], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
        if (r.status !== 0) throw new Error(`device-bench exited ${r.status}:\n${r.stderr}`);
        bench = JSON.parse(readFileSync(join(tmp, `bench${ci}.json`), 'utf8'));
        pl[ci] = JSON.parse(readFileSync(join(tmp, `pl${ci}.json`), 'utf8'));
        inputs = JSON.parse(readFileSync(join(tmp, `inputs${ci}.json`), 'utf8'));
        await runPython([HF_BENCH, 'perf', '--model', dir, '--inputs', join(tmp, `inputs${ci}`), '--device', 'cpu', '--dtype', 'float32', '--reps', '1', '--new-tokens', '3',
          '--out', join(tmp, `hf${ci}.json`), '--metrics-out', join(tmp, `hf-metrics${ci}.json`)], PYTHON);
        hf = JSON.parse(readFileSync(join(tmp, `hf${ci}.json`), 'utf8'));
        hfM[ci] = JSON.parse(readFileSync(join(tmp, `hf-metrics${ci}.json`), 'utf8'));
      }, 300_000);

      it('device-bench timed every step and wrote the inputs for the HF side', () => {
        expect(bench.errors).toEqual({});
        expect(bench.prefill_s.median).toBeGreaterThan(0);
        expect(bench.analyze_s.median).toBeGreaterThan(0);
        expect(bench.decode.tokens).toBe(2); // EOS ignored: 3 tokens, the first from the prefill
        expect(bench.decode.tok_s).toBeGreaterThan(0);
        expect(bench.peak_gpu_bytes).toBeGreaterThan(0);
        expect(inputs.ids.length).toBe(bench.seq);
        expect(inputs.image).toEqual([5, 14]); // "USER: <image>…": 9 patches after 5 text tokens
        expect(inputs.query).toBe(bench.seq - 1);
        expect(inputs.pixel_shape).toEqual([3, 42, 42]);
        expect(readFileSync(join(tmp, `inputs${ci}.f32`)).byteLength).toBe(4 * 3 * 42 * 42);
      });

      it('hf_bench.py perf ran every phase on these inputs, eager then sdpa', () => {
        expect(hf.errors).toEqual({});
        expect(hf.seq).toBe(bench.seq);
        expect(hf.attn_eager).toBe('eager');
        expect(hf.attn_sdpa).toBe('sdpa');
        for (const k of ['prefill_s_eager', 'prefill_s_sdpa', 'analyze_s']) expect(hf[k].median, k).toBeGreaterThan(0);
        for (const k of ['decode_eager', 'decode_sdpa']) expect(hf[k].tok_s, k).toBeGreaterThan(0);
      });

      it('the token sets HF was given are analyze\'s', () => {
        expect(inputs.image).toEqual(pl[ci].tokens.image);
        expect(inputs.text).toEqual(pl[ci].tokens.text);
      });

      it('contextualization: every layer and last_layer_prenorm within 1e-5', () => {
        for (const k of ['inter', 'intra_image', 'intra_text']) {
          expect(hfM[ci].contextualization[k]).toHaveLength(pl[ci].contextualization[k].length);
          expect(maxAbs(hfM[ci].contextualization[k], pl[ci].contextualization[k])).toBeLessThan(1e-5);
          expect(Math.abs(hfM[ci].contextualization.last_layer_prenorm[k] - pl[ci].contextualization.last_layer_prenorm[k])).toBeLessThan(1e-5);
        }
      });

      it('norm attention (layer and per head) within 1e-4 of its scale', () => {
        expect(hfM[ci].norm_attention.query).toBe(pl[ci].norm_attention.query);
        for (const k of ['layer', 'head']) {
          const scale = maxOf(pl[ci].norm_attention[k]);
          expect(scale).toBeGreaterThan(0);
          expect(maxAbs(hfM[ci].norm_attention[k], pl[ci].norm_attention[k]) / scale).toBeLessThan(1e-4);
        }
      });

      it('LogitLens: the same top-k ids, probabilities within 1e-5', () => {
        expect(hfM[ci].logit_lens.top_ids).toEqual(pl[ci].logit_lens.top_ids);
        expect(maxAbs(hfM[ci].logit_lens.top_probs, pl[ci].logit_lens.top_probs)).toBeLessThan(1e-5);
      });
    });
  }

  it('the other checkpoint\'s HF metrics are far from analyze\'s (the comparison can fail)', () => {
    for (const [a, b] of [[0, 1], [1, 0]]) {
      expect(maxAbs(hfM[b].contextualization.inter, pl[a].contextualization.inter)).toBeGreaterThan(1e-3);
      expect(maxAbs(hfM[b].norm_attention.layer, pl[a].norm_attention.layer) / maxOf(pl[a].norm_attention.layer)).toBeGreaterThan(1e-2);
    }
  });
});

describe('hf_bench.py without transformers', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-check-notr-'));
  // a `transformers` that cannot be imported, ahead of any installed one
  const shadow = join(tmp, 'shadow');
  mkdirSync(join(shadow, 'transformers'), { recursive: true });
  writeFileSync(join(shadow, 'transformers', '__init__.py'), 'raise ImportError("simulated: no transformers here")\n');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const py = (args: string[]) => {
    const r = spawnSync(PYTHON, [HF_BENCH, ...args], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: shadow }, timeout: 60_000 });
    return { status: r.status, err: r.stderr, out: r.stdout };
  };

  for (const args of [['check'], ['perf', '--model', tmp, '--inputs', join(tmp, 'x')], ['parity', '--model', tmp, '--dump', join(tmp, 'd.safetensors')]]) {
    it(`${args[0]}: exits 3 and says where transformers is`, () => {
      const r = py(args);
      expect(r.err).toContain('HF transformers cannot be imported');
      expect(r.err).toContain('simulated: no transformers here');
      expect(r.err).toContain('lent H100/H200 machines have it preinstalled');
      expect(r.status).toBe(3);
    });
  }

  it('bad arguments exit 2 before the import', () => {
    expect(py(['perf', '--model', tmp, '--inputs', 'x', '--reps', '0']).status).toBe(2);
    expect(py(['perf', '--model', tmp]).status).toBe(2); // --inputs is required
    expect(py(['frobnicate']).status).toBe(2);
  });
});

describe('summary.py', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-check-summary-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const work = join(tmp, 'work');
  const out = join(tmp, 'out');
  mkdirSync(work, { recursive: true });
  mkdirSync(out, { recursive: true });

  it('prints the table with ratios, memory over the baseline and the parity lines', () => {
    const w = (dir: string, f: string, v: unknown) => writeFileSync(join(dir, f), typeof v === 'string' ? v : JSON.stringify(v));
    w(out, 'phaselens.json', { adapter: 'NVIDIA H200', kernels: 'gpu', picked: { matmul_prefill: 'sgmat', matmul_decode: 'gemv', attention_prefill: 'flash', attention_decode: 'decode' }, self_checks: ["shader-f16: the 'tiled16' matmul passed its self-check", "subgroup matrices f16 16×16×16 → f32: 'sgmat' failed its self-check; not used"], seq: 600, image_span: [5, 581], load_s: 9.5, prefill_s: { median: 0.05 }, decode: { tokens: 31, tok_s: 40 }, analyze_s: { median: 0.2 }, peak_gpu_bytes: 15 * 2 ** 30, errors: {} });
    w(out, 'hf.json', { versions: { torch: '2.11.0', transformers: '5.17.0', gpu: 'NVIDIA H200' }, prefill_s_eager: { median: 0.04 }, prefill_s_sdpa: { median: 0.025 }, decode_eager: { tok_s: 50 }, decode_sdpa: { tok_s: 80 }, analyze_s: { median: 0.8 }, peak_bytes: { analyze: { allocated: 16 * 2 ** 30 } }, load_s: 12, errors: { decode_sdpa: 'RuntimeError: boom' } });
    w(out, 'parity-llava.json', { tensors: { a: {}, b: {} }, worst_rel: 3.2e-6, tol: 1e-4, pass: true, versions: { transformers: '5.17.0' } });
    w(work, 'mem.baseline.log', '500\n510\n');
    w(work, 'mem.phaselens.log', '510\n15000\n16894\n');
    w(work, 'steps.tsv', 'setup\t0\t3\nhf\t124\t170\n');
    w(work, 'make-random.rc', '0 70\n');
    const metrics = (inter: number[], top: number) => ({ contextualization: { inter, intra_image: inter, intra_text: inter }, logit_lens: { top_ids: [[[top, 1]], [[5, 1]]] } });
    w(work, 'metrics-phaselens.json', metrics([0.1, 0.2], 7));
    w(work, 'metrics-hf.json', metrics([0.1, 0.2005], 8));
    const r = spawnSync(PYTHON, [SUMMARY, '--work', work, '--out', out, '--budget', '480', '--elapsed', '301'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const t = r.stdout;
    expect(readFileSync(join(out, 'summary.txt'), 'utf8')).toBe(t);
    expect(t).toMatch(/prefill \(median\) +50\.0 ms +40\.0 ms +25\.0 ms +0\.80x +0\.50x/);
    expect(t).toMatch(/decode tokens\/s \(31 tok\) +40\.0 +50\.0 +80\.0 +0\.80x +0\.50x/);
    expect(t).toMatch(/analyze s\/image, all probes +0\.20 s +0\.80 s \(hs\+attn\+torch\) +n\/a \(no attentions\) +4\.00x/);
    expect(t).toContain('15.00 GiB buffers; 16.00 GiB device'); // (16894 − 510) MiB
    expect(t).toContain('16.00 GiB torch alloc');
    expect(t).toContain('576 visual');
    expect(t).toContain('variants picked: matmul prefill sgmat, decode gemv; attention (D=128) prefill flash, decode decode');
    expect(t).toContain("self-checks: shader-f16: the 'tiled16' matmul passed its self-check; subgroup matrices f16 16×16×16 → f32: 'sgmat' failed its self-check; not used");
    expect(t).toMatch(/max \|Δ inter\| 5\.00e-04/);
    expect(t).toContain('LogitLens top-1 agreement 50.0%');
    expect(t).toContain('parity llava (tiny, f32, HF 5.17.0 on CPU vs phaselens dump): 2 tensors, worst max|Δ|/max|HF| 3.20e-06 (tol 0.0001): PASS');
    expect(t).toContain('parity instructblip (tiny, HF on CPU vs phaselens dump): not run (see log.txt)');
    expect(t).toContain('error in hf decode_sdpa: RuntimeError: boom');
    expect(t).toContain('make-random llava-7b: exit 0 in 70 s (0.20 GB/s)');
    expect(t).toContain('steps (rc, s): setup 0 3s, hf 124 170s');
    expect(t).toContain('total 301 s of the 480 s budget');
    expect(t).toContain('phaselens per-kernel profile: not run');
  });

  it('with the --precision f16 run: both in each phaselens cell and ratio, both forms\' self-checks and variants, folded into phaselens.json', () => {
    const w = (dir: string, f: string, v: unknown) => writeFileSync(join(dir, f), typeof v === 'string' ? v : JSON.stringify(v));
    const o2 = join(tmp, 'out2');
    const w2 = join(tmp, 'work2');
    mkdirSync(o2, { recursive: true });
    mkdirSync(w2, { recursive: true });
    const plan = (k: string) => ({ 'lm q/k/v/o': `${k} 128x128 2 stage(s) split K 1`, 'clip q/k/v/o': `${k} 128x128 2 stage(s) split K 4` });
    const base = { adapter: 'NVIDIA H100', kernels: 'gpu', seq: 600, image_span: [5, 581], load_s: 9.5, peak_gpu_bytes: 15 * 2 ** 30 };
    w(o2, 'phaselens.json', { ...base, precision: 'f32', picked: { matmul_prefill: 'sgmat', matmul_decode: 'gemv', attention_prefill: 'flash', attention_decode: 'decode' }, matmul_plan: plan('sgmat'), self_checks: ["subgroup matrices f16 16×16×16 → f32: the 'sgmat' matmul passed its self-check (max error 0.120 of its bound); using it for prefill"], prefill_s: { median: 0.1 }, decode: { tokens: 31, tok_s: 40 }, analyze_s: { median: 0.4 }, errors: {} });
    w(w2, 'phaselens-f16.json', { ...base, precision: 'f16', picked: { matmul_prefill: 'tiled16', matmul_decode: 'gemv', attention_prefill: 'flash', attention_decode: 'decode' }, self_checks: ["subgroup matrices f16 16×16×16 → f32: 'sgmat' (precision f16) failed its self-check; not used"], prefill_s: { median: 0.05 }, decode: { tokens: 31, tok_s: 50 }, analyze_s: { median: 0.2 }, errors: { analyze: 'boom16' } });
    w(o2, 'hf.json', { versions: { torch: '2.11.0', transformers: '5.17.0', gpu: 'NVIDIA H100' }, prefill_s_eager: { median: 0.04 }, prefill_s_sdpa: { median: 0.025 }, decode_eager: { tok_s: 50 }, decode_sdpa: { tok_s: 80 }, analyze_s: { median: 0.8 }, errors: {} });
    w(w2, 'mem.baseline.log', '500\n');
    w(w2, 'mem.phaselens.log', '16884\n');
    w(w2, 'mem.phaselens-f16.log', '8692\n');
    const r = spawnSync(PYTHON, [SUMMARY, '--work', w2, '--out', o2], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const t = r.stdout;
    expect(t).toMatch(/ +phaselens f32 \/ f16 +HF eager/);
    expect(t).toMatch(/prefill \(median\) +100\.0 ms \/ 50\.0 ms +40\.0 ms +25\.0 ms +0\.40x \/ 0\.80x +0\.25x \/ 0\.50x/);
    expect(t).toMatch(/decode tokens\/s \(31 tok\) +40\.0 \/ 50\.0 +50\.0 +80\.0 +0\.80x \/ 1\.00x +0\.50x \/ 0\.62x/);
    expect(t).toMatch(/analyze s\/image, all probes +0\.40 s \/ 0\.20 s +0\.80 s/);
    expect(t).toContain('16.00 GiB device / 15.00 GiB buffers; 8.00 GiB device');
    expect(t).toContain('variants picked (f32): matmul prefill sgmat, decode gemv');
    expect(t).toContain('prefill matmuls: lm q/k/v/o sgmat 128x128 2 stage(s) split K 1, clip q/k/v/o sgmat 128x128 2 stage(s) split K 4');
    expect(t).toContain('variants picked (--precision f16): matmul prefill tiled16, decode gemv');
    expect(t).toContain("self-checks (f32): subgroup matrices f16 16×16×16 → f32: the 'sgmat' matmul passed its self-check");
    expect(t).toContain("self-checks (--precision f16): subgroup matrices f16 16×16×16 → f32: 'sgmat' (precision f16) failed its self-check; not used");
    expect(t).toContain('error in f16 analyze: boom16');
    const folded = JSON.parse(readFileSync(join(o2, 'phaselens.json'), 'utf8'));
    expect(folded.f16.prefill_s.median).toBe(0.05);
    // run again (the folded file as input): the same table
    expect(spawnSync(PYTHON, [SUMMARY, '--work', w2, '--out', o2], { encoding: 'utf8' }).stdout).toBe(t);
  });
});
