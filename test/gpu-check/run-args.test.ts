/**
 * bench/gpu/run.sh's argument handling and refusals, against a fake carry (empty files
 * and a MANIFEST.json with the tree's real source hash): every refusal exits 2 with a
 * message naming the problem, before anything is unpacked or written; --dry-run prints
 * the plan. The real carry and the full run are in carry.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUN = 'bench/gpu/run.sh';

function sourceHash(): string {
  const r = spawnSync('bash', ['bench/gpu/source-hash.sh', ROOT], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

/** A carry with every file run.sh looks for (empty) and the given source hash. */
function fakeCarry(dir: string, hash: string, skip: string[] = []): string {
  for (const f of ['node.xz', 'app/phaselens.mjs', 'app/device-bench.mjs', 'app/node_modules/webgpu/index.js', 'app/node_modules/webgpu/dist/linux-x64/dawn.node.xz']) {
    if (skip.includes(f)) continue;
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), '');
  }
  writeFileSync(join(dir, 'MANIFEST.json'), JSON.stringify({ format: 'phaselens-gpu-carry', version: 1, source_hash: hash, missing: [] }, null, 1) + '\n');
  return dir;
}

function run(args: string[], env: Record<string, string | undefined> = {}) {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) e[k] = v;
  const r = spawnSync('bash', [RUN, ...args], { cwd: ROOT, env: e, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('bench/gpu/run.sh arguments and refusals', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gpu-check-args-'));
  const out = join(tmp, 'out');
  let good: string;
  beforeAll(() => {
    good = fakeCarry(join(tmp, 'good'), sourceHash());
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('--dry-run with a current carry prints the plan and writes nothing', () => {
    const r = run(['--carry', good, '--out', out, '--work', join(tmp, 'w'), '--dry-run']);
    expect(r.out).toContain('run.sh plan (dry run): budget 480 s');
    expect(r.out).toContain('make-random --shape llava-7b');
    expect(r.status).toBe(0);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(tmp, 'w'))).toBe(false);
  });

  it('writes the 7B where there is more free space (--work or /dev/shm), and skips it where neither has --need-gb', () => {
    const free = (d: string) => Number(spawnSync('df', ['-Pk', d], { encoding: 'utf8' }).stdout.split('\n')[1].split(/\s+/)[3]) / 2 ** 20;
    const [work, shm] = [free(tmp), free('/dev/shm')];
    const r = run(['--carry', good, '--out', out, '--work', join(tmp, 'w'), '--dry-run', '--need-gb', '1']);
    const where = Math.floor(shm) > Math.floor(work) ? '/dev/shm/phaselens-llava-7b-random' : join(tmp, 'w', 'llava-7b-random');
    expect(r.out).toContain(`checkpoint make-random --shape llava-7b into ${where} (free: ${Math.floor(work)} GB under ${join(tmp, 'w')}, ${Math.floor(shm)} GB in /dev/shm; it needs 1)`);
    const none = run(['--carry', good, '--out', out, '--work', join(tmp, 'w'), '--dry-run', '--need-gb', '999999']);
    expect(none.out).toMatch(/run\.sh: no room for the 7B checkpoint \(free: \d+ GB under .*; it needs 999999\); the 7B steps are skipped/);
    expect(none.out).toContain('checkpoint none (no 7B steps)');
    expect(none.status).toBe(0);
  });

  it('takes $OUT from the environment, as the device tool sets it', () => {
    const r = run(['--carry', good, '--dry-run', '--budget-s', '300', '--reps', '2', '--new-tokens', '8'], { OUT: out });
    expect(r.out).toContain(`results ${out}`);
    expect(r.out).toContain('budget 300 s');
    expect(r.out).toContain('reps 2, new tokens 8');
    expect(r.status).toBe(0);
  });

  it('--help prints the usage', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('The one-shot GPU check');
    expect(r.out).toContain('--budget-s');
  });

  const refusals: [string, string[], Record<string, string | undefined>, RegExp][] = [
    ['an unknown argument', ['--frobnicate'], {}, /unknown argument '--frobnicate'/],
    ['a budget that is not a number', ['--budget-s', 'lots'], {}, /--budget-s must be a positive integer, got 'lots'/],
    ['a budget over the tool\'s 600 s', ['--budget-s', '700'], {}, /stops a command at 600 s; give at most 590/],
    ['zero reps', ['--reps', '0'], {}, /--reps must be a positive integer/],
    ['a --need-gb that is not a number', ['--need-gb', '14.5'], {}, /--need-gb must be a positive integer, got '14\.5'/],
    ['one new token', ['--new-tokens', '1'], {}, /--new-tokens must be at least 2/],
    ['an option without its value', ['--carry'], {}, /--carry needs a value/],
    ['neither $OUT nor --out', [], { OUT: undefined }, /no \$OUT and no --out DIR/],
    ['--model and --skip-7b together', ['--model', '.', '--skip-7b'], {}, /exclude each other/],
    ['--model without a config.json', ['--model', 'bench'], {}, /--model bench: no config.json there/],
  ];
  for (const [what, args, env, msg] of refusals) {
    it(`refuses ${what} (exit 2)`, () => {
      const r = run(['--carry', good, ...(env.OUT === undefined && 'OUT' in env ? [] : ['--out', out]), ...args, '--dry-run'], env);
      expect(r.out).toMatch(msg);
      expect(r.status).toBe(2);
    });
  }

  it('refuses a folder that was never packed', () => {
    const r = run(['--carry', join(tmp, 'nothing'), '--out', out, '--dry-run']);
    expect(r.out).toMatch(/no .*nothing\/MANIFEST\.json: pack first/);
    expect(r.status).toBe(2);
  });

  it('refuses an incomplete carry, naming the missing file', () => {
    const c = fakeCarry(join(tmp, 'partial'), sourceHash(), ['app/node_modules/webgpu/dist/linux-x64/dawn.node.xz']);
    const r = run(['--carry', c, '--out', out, '--dry-run']);
    expect(r.out).toMatch(/dawn\.node\.xz is missing: the carry is incomplete/);
    expect(r.status).toBe(2);
  });

  it('refuses a stale carry unless --allow-stale, and then warns', () => {
    const c = fakeCarry(join(tmp, 'stale'), '0123456789abcdef');
    const r = run(['--carry', c, '--out', out, '--dry-run']);
    expect(r.out).toMatch(/the carry is stale: packed from sources 0123456789abcdef, this tree hashes to [0-9a-f]{16}/);
    expect(r.status).toBe(2);
    const s = run(['--carry', c, '--out', out, '--dry-run', '--allow-stale']);
    expect(s.out).toMatch(/WARNING: carry packed from sources 0123456789abcdef/);
    expect(s.status).toBe(0);
  });

  it('prints what the pack reported missing', () => {
    const c = fakeCarry(join(tmp, 'missing'), sourceHash());
    writeFileSync(join(c, 'MANIFEST.json'), JSON.stringify({ source_hash: sourceHash(), missing: ['vulkan: no libvulkan1 .deb'] }, null, 1) + '\n');
    const r = run(['--carry', c, '--out', out, '--dry-run']);
    expect(r.out).toContain('the pack reported missing pieces');
    expect(r.out).toContain('vulkan: no libvulkan1 .deb');
    expect(r.status).toBe(0);
  });
});
