/**
 * The carry for the lent GPU machine, packed for real (offline: no apt-get download) and
 * run the way bench/gpu/run.sh runs it there, on this machine's lavapipe:
 *
 *  - pack.ts builds a folder holding everything the run needs (stripped, xz-compressed
 *    node and dawn.node, the two esbuild bundles, the webgpu package's loader, a Vulkan
 *    loader or a note that it is missing, MANIFEST.json) and the carry plus the working
 *    tree fit the device tool's 64 MiB; with a lower limit it refuses (exit 1);
 *  - the carried node, decompressed, runs the bundled CLI: --help, and a tiny `dump`
 *    whose file is byte-identical to the one the tsx CLI writes from the same sources;
 *  - run.sh --setup-only unpacks it; run.sh --model TINY runs every step that does not
 *    need HF transformers or an NVIDIA GPU and returns at most 8 files, with names the
 *    device tool accepts, in $OUT; the HF steps say transformers is missing.
 *
 * The first pack on a machine compresses node (about a minute on two cores); the result
 * is cached by the binary's sha256 under test/.cache/gpu-check.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hfPython } from '../../bench/hf.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE = join(ROOT, 'test', '.cache', 'gpu-check');
const IMAGE = join(ROOT, 'test/fixtures/images/000000039769.png');
const MIB = 2 ** 20;

function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env: opts.env ?? process.env, timeout: opts.timeout ?? 120_000, maxBuffer: 64 * MIB });
  return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '', all: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function haveVulkanLoader(): boolean {
  return /libvulkan\.so\.1 .*x86-64/.test(sh('ldconfig', ['-p']).out);
}

describe('bench/gpu carry: packed for real, run with the carried node', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-check-carry-'));
  const carry = join(tmp, 'carry');
  let pack: ReturnType<typeof sh>;
  let manifest: any;
  beforeAll(() => {
    mkdirSync(CACHE, { recursive: true });
    pack = sh(process.execPath, ['src/cli/run-ts.mjs', 'bench/gpu/pack.ts', '--offline', '--out', carry, '--cache', CACHE], { timeout: 400_000 });
    if (pack.status === 0) manifest = JSON.parse(readFileSync(join(carry, 'MANIFEST.json'), 'utf8'));
  }, 420_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('packs offline and fits the device tool\'s 64 MiB with the working tree', () => {
    expect(pack.all).toMatch(/carry [\d.]+ MiB \+ working tree [\d.]+ MiB = [\d.]+ MiB of the 64\.0 MiB/);
    expect(pack.status).toBe(0);
    const sizes = manifest.files as Record<string, number>;
    const carryBytes = Object.values(sizes).reduce((a, b) => a + b, 0);
    expect(manifest.carry_bytes).toBe(carryBytes);
    expect(manifest.carry_bytes + manifest.tree_bytes).toBeLessThanOrEqual(64 * MIB);
    // what the run needs, and nothing large besides
    for (const f of ['node.xz', 'app/phaselens.mjs', 'app/device-bench.mjs', 'app/node_modules/webgpu/index.js', 'app/node_modules/webgpu/package.json', 'app/node_modules/webgpu/dist/linux-x64/dawn.node.xz']) {
      expect(sizes[f], f).toBeGreaterThan(0);
      expect(statSync(join(carry, f)).size).toBe(sizes[f]);
    }
    expect(sizes['node.xz']).toBeLessThan(30 * MIB);
    expect(Object.keys(sizes).filter((f) => f.endsWith('.node'))).toEqual([]); // only compressed binaries travel
    expect(manifest.node.version).toBe(process.version);
    expect(manifest.source_hash).toBe(sh('bash', ['bench/gpu/source-hash.sh', ROOT]).out.trim());
  });

  it('carries the Vulkan loader and glvnd (copies of this machine\'s, offline), listed in vulkan/LIBS.tsv; what it lacks is missing', () => {
    const libs = ['libvulkan.so.1', 'libGLdispatch.so.0', 'libEGL.so.1', 'libOpenGL.so.0', 'libGL.so.1', 'libGLX.so.0', 'libGLESv2.so.2'];
    const rows = readFileSync(join(carry, 'vulkan', 'LIBS.tsv'), 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
    const here = sh('ldconfig', ['-p']).out;
    for (const lib of libs) {
      if (new RegExp(`^\\s${lib.replace(/\./g, '\\.')} .*x86-64`, 'm').test(here)) {
        expect(rows.find((r) => r[1] === lib), lib).toEqual([expect.stringMatching(/^lib/), lib, lib]);
        expect(sizes(manifest)[`vulkan/${lib}`] ?? 0, lib).toBeGreaterThan(0);
        expect(manifest.vulkan).toContain(`/${lib}`);
      } else {
        expect(manifest.missing.join('\n')).toContain(`x86-64 ${lib} on this machine`);
        expect(pack.all).toContain('MISSING: vulkan');
      }
    }
    if (haveVulkanLoader()) expect(manifest.vulkan).toMatch(/^copied .*libvulkan\.so\.1, .* \(no \.deb: --offline/);
  });

  it('refuses when the limit is lower than what would travel (exit 1), and on bad arguments (exit 2)', () => {
    const r = sh(process.execPath, ['src/cli/run-ts.mjs', 'bench/gpu/pack.ts', '--offline', '--out', join(tmp, 'small'), '--cache', CACHE, '--limit-mib', '8'], { timeout: 400_000 });
    expect(r.all).toMatch(/REFUSED: [\d.]+ MiB is over the limit of 8\.0 MiB/);
    expect(r.status).toBe(1);
    const bad = sh(process.execPath, ['src/cli/run-ts.mjs', 'bench/gpu/pack.ts', '--limit-mib', 'x']);
    expect(bad.err).toContain('pack: --limit-mib must be a positive number, got x');
    expect(bad.status).toBe(2);
    expect(sh(process.execPath, ['src/cli/run-ts.mjs', 'bench/gpu/pack.ts', '--frob']).status).toBe(2);
  }, 420_000);

  describe('the carried node and bundles', () => {
    const rt = join(tmp, 'rt');
    const tiny = join(tmp, 'tiny');
    const env = { ...process.env, PHASELENS_ROOT: ROOT };
    beforeAll(async () => {
      mkdirSync(join(rt, 'app'), { recursive: true });
      expect(sh('bash', ['-c', `cp -r '${carry}/app' '${rt}/' && xz -dc '${carry}/node.xz' > '${rt}/node' && chmod +x '${rt}/node' && xz -d '${rt}/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz'`]).status).toBe(0);
      await makeTiny({ arch: 'llava', out: tiny, seed: 3 });
    }, 120_000);

    it('the decompressed node is this node, stripped', () => {
      const v = sh(join(rt, 'node'), ['--version']);
      expect(v.out.trim()).toBe(process.version);
      expect(statSync(join(rt, 'node')).size).toBeLessThanOrEqual(statSync(process.execPath).size);
    });

    it('runs the bundled CLI: --help lists the commands', () => {
      const r = sh(join(rt, 'node'), [join(rt, 'app', 'phaselens.mjs'), '--help'], { env });
      expect(r.status).toBe(0);
      for (const c of ['make-random', 'make-tiny', 'dump', 'analyze', 'generate']) expect(r.out).toContain(c);
    });

    it('a tiny dump through the bundle and the carried dawn.node is byte-identical to the tsx CLI\'s', () => {
      const args = ['dump', '--model', tiny, '--image', IMAGE, '--prompt', 'What is in the image?', '--chat'];
      const a = sh(join(rt, 'node'), [join(rt, 'app', 'phaselens.mjs'), ...args, '--out', join(tmp, 'bundle.safetensors')], { env });
      expect(a.all).toContain('wrote 13 tensors');
      expect(a.status).toBe(0);
      const b = sh(process.execPath, ['src/cli/phaselens.mjs', ...args, '--out', join(tmp, 'tsx.safetensors')]);
      expect(b.status).toBe(0);
      const x = readFileSync(join(tmp, 'bundle.safetensors'));
      expect(x.length).toBeGreaterThan(10_000);
      expect(x.equals(readFileSync(join(tmp, 'tsx.safetensors')))).toBe(true);
    });

    it('the bundle finds shaders and assets under PHASELENS_ROOT, and fails plainly without them', () => {
      const r = sh(join(rt, 'node'), [join(rt, 'app', 'phaselens.mjs'), 'make-random', '--shape', 'llava-mid', '--out', join(tmp, 'mr')], { env: { ...env, PHASELENS_ROOT: join(tmp, 'nowhere') } });
      expect(r.status).not.toBe(0);
      expect(r.all).toMatch(/missing asset \S*nowhere\/weights-tools\/assets\/llava-1\.5-7b-hf\/tokenizer\.json/);
      expect(r.all).not.toMatch(/\n\s+at /); // no stack trace
    });
  });

  describe('run.sh with this carry', () => {
    const out = join(tmp, 'out');
    const work = join(tmp, 'work');
    // python3 = the venv's python (torch, numpy; a wrapper: a symlink would leave the venv), with transformers shadowed (missing)
    const bin = join(tmp, 'bin');
    const shadow = join(tmp, 'shadow');
    let run: ReturnType<typeof sh>;
    beforeAll(async () => {
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, 'python3'), `#!/bin/sh\nexec '${hfPython()}' "$@"\n`, { mode: 0o755 });
      mkdirSync(join(shadow, 'transformers'), { recursive: true });
      writeFileSync(join(shadow, 'transformers', '__init__.py'), 'raise ImportError("simulated: no transformers here")\n');
      const tiny = join(tmp, 'tiny-run');
      await makeTiny({ arch: 'llava', out: tiny, seed: 5, dtype: 'f16' });
      const env = { ...process.env, OUT: out, PATH: `${bin}:${process.env.PATH}`, PYTHONPATH: shadow };
      run = sh('bash', ['bench/gpu/run.sh', '--carry', carry, '--work', work, '--model', tiny, '--reps', '1', '--new-tokens', '3', '--budget-s', '300'], { env, timeout: 320_000 });
    }, 340_000);

    it('--setup-only unpacks node and dawn.node and starts the bundle', () => {
      const r = sh('bash', ['bench/gpu/run.sh', '--carry', carry, '--work', join(tmp, 'work-setup'), '--out', join(tmp, 'out-setup'), '--setup-only']);
      expect(r.all).toContain(`setup-only: node ${process.version}, bundle starts`);
      expect(r.status).toBe(0);
      expect(existsSync(join(tmp, 'work-setup', 'rt', 'app', 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node'))).toBe(true);
    });

    it('runs every step it can here, and the summary comes last', () => {
      expect(run.status).toBe(0);
      const summary = readFileSync(join(out, 'summary.txt'), 'utf8');
      expect(run.out.trimEnd().endsWith(summary.trimEnd().split('\n').pop()!)).toBe(true);
      // phaselens at f32 / at --precision f16 (lavapipe has shader-f16)
      expect(summary).toMatch(/prefill \(median\) +[\d.]+ ms \/ [\d.]+ ms/);
      expect(summary).toMatch(/decode tokens\/s \(2 tok\) +[\d.]+ \/ [\d.]+/);
      expect(summary).toMatch(/analyze s\/image, all probes +[\d.]+ s \/ [\d.]+ s/);
      expect(summary).toContain('9 visual');
      expect(summary).toMatch(/steps \(rc, s\): setup 0 \d+s, checks 3 \d+s, parity-llava 3 \d+s, parity-instructblip 3 \d+s, phaselens 0 \d+s, phaselens-f16 0 \d+s, profile 0 \d+s/);
      expect(readFileSync(join(out, 'profile.txt'), 'utf8')).toMatch(/kernel +calls +steady ms/);
      const pl = JSON.parse(readFileSync(join(out, 'phaselens.json'), 'utf8'));
      expect(pl.errors).toEqual({});
      expect(pl.precision).toBe('f32');
      expect(pl.f16.precision).toBe('f16'); // the f16 run, folded in by summary.py
      expect(pl.f16.errors).toEqual({});
      expect(pl.f16.decode.tokens).toBe(2);
      expect(existsSync(join(work, 'dump-llava.safetensors'))).toBe(true);
      expect(existsSync(join(work, 'dump-instructblip.safetensors'))).toBe(true);
    });

    it('says that HF transformers is missing, where, and what that leaves out', () => {
      const log = readFileSync(join(out, 'log.txt'), 'utf8');
      expect(log).toContain('HF transformers cannot be imported');
      expect(log).toContain('simulated: no transformers here');
      expect(log).toContain('parity llava: HF transformers is missing here (see checks); not compared');
      expect(log).toContain('== hf: not run (transformers missing)');
      expect(readFileSync(join(out, 'summary.txt'), 'utf8')).toContain('parity llava (tiny, HF on CPU vs phaselens dump): not run (HF transformers missing)');
    });

    it('on a machine with nvidia-smi where Dawn finds only a software adapter, skips phaselens\'s 7B steps and says why', async () => {
      const fake = join(tmp, 'fake-gpu-bin');
      mkdirSync(fake, { recursive: true });
      writeFileSync(join(fake, 'nvidia-smi'), '#!/bin/sh\necho 1000\n');
      chmodSync(join(fake, 'nvidia-smi'), 0o755);
      const tiny = join(tmp, 'tiny-run');
      const o = join(tmp, 'out-fake');
      const r = sh('bash', ['bench/gpu/run.sh', '--carry', carry, '--work', join(tmp, 'work-fake'), '--out', o, '--model', tiny, '--reps', '1', '--new-tokens', '2', '--budget-s', '200'], {
        env: { ...process.env, PATH: `${fake}:${bin}:${process.env.PATH}`, PYTHONPATH: shadow },
        timeout: 220_000,
      });
      expect(r.status).toBe(0);
      expect(r.out).toContain('run.sh: phaselens did not get the NVIDIA GPU from Dawn (phaselens: GPU ');
      expect(r.out).not.toContain('== phaselens (');
      expect(existsSync(join(o, 'phaselens.json'))).toBe(false);
      expect(JSON.parse(readFileSync(join(tmp, 'work-fake', 'inputs.json'), 'utf8')).ids.length).toBeGreaterThan(9); // for the HF side
      expect(readFileSync(join(o, 'summary.txt'), 'utf8')).toMatch(/prefill \(median\) +— /);
    }, 240_000);

    it('with no adapter (a Vulkan driver file that does not exist), prints the loader\'s diagnostics and skips the 7B steps', () => {
      const o = join(tmp, 'out-noadapter');
      const r = sh('bash', ['bench/gpu/run.sh', '--carry', carry, '--work', join(tmp, 'work-noadapter'), '--out', o, '--model', join(tmp, 'tiny-run'), '--reps', '1', '--new-tokens', '2', '--budget-s', '200', '--no-profile'], {
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, PYTHONPATH: shadow, VK_DRIVER_FILES: join(tmp, 'no-such-icd.json') },
        timeout: 220_000,
      });
      expect(r.status).toBe(0);
      expect(r.out).toContain('adapter: none found');
      expect(r.out).toContain('run.sh: Dawn found no adapter; the phaselens 7B steps are skipped.');
      expect(r.out).toContain(`-- Vulkan loader diagnostics (VK_LOADER_DEBUG=error,driver; VK_DRIVER_FILES=${join(tmp, 'no-such-icd.json')}):`);
      // the loader's own lines (it names the driver file it could not use), then the help Dawn's refusal gets
      const diag = r.out.slice(r.out.indexOf('-- Vulkan loader diagnostics'), r.out.indexOf('-- end of the loader diagnostics'));
      expect(diag).toMatch(/no-such-icd\.json|ERROR|DRIVER/i);
      expect(diag).toContain('no WebGPU adapter found');
      expect(r.out).not.toContain('== phaselens (');
    }, 240_000);

    it('reports the variants picked and the self-checks (here: CPU-class kernels, none apply)', () => {
      const pl = JSON.parse(readFileSync(join(out, 'phaselens.json'), 'utf8'));
      for (const r of [pl, pl.f16]) {
        expect(r.picked).toEqual({ matmul_prefill: 'subgroup', matmul_decode: 'subgroup', attention_prefill: 'split', attention_decode: 'split' });
        expect(r.self_checks).toEqual([]);
        expect(r.matmul_plan['lm down']).toBe('subgroup');
      }
      const summary = readFileSync(join(out, 'summary.txt'), 'utf8');
      for (const form of ['f32', '--precision f16']) {
        expect(summary).toContain(`variants picked (${form}): matmul prefill subgroup, decode subgroup; attention (D=128) prefill split, decode split`);
        expect(summary).toContain(`self-checks (${form}): none apply (CPU-class kernels, or no shader-f16 / subgroup matrices)`);
      }
      expect(summary).toContain('prefill matmuls: lm q/k/v/o subgroup, lm gate/up subgroup, lm down subgroup, clip q/k/v/o subgroup');
    });

    it('leaves at most 8 files in $OUT, each under 16 MiB, named as the device tool requires', () => {
      const files: string[] = [];
      const walk = (d: string, depth: number) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          expect(e.name).toMatch(/^[A-Za-z0-9._-]+$/);
          if (e.isDirectory()) {
            expect(depth).toBeLessThan(2);
            walk(join(d, e.name), depth + 1);
          } else files.push(join(d, e.name));
        }
      };
      walk(out, 0);
      expect(files.length).toBeLessThanOrEqual(8);
      for (const f of files) expect(statSync(f).size).toBeLessThan(16 * MIB);
      expect(files.map((f) => f.slice(out.length + 1)).sort()).toEqual(['log.txt', 'phaselens.json', 'profile.txt', 'summary.txt', 'trace.json.gz']);
    });
  });
});

function sizes(manifest: any): Record<string, number> {
  return manifest.files;
}
