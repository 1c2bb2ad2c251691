/**
 * Builds the folder that bench/gpu/run.sh needs on a lent H100/H200, which has no Node.js
 * and no registry access (README.md beside this file says how a session runs it):
 *
 *   node src/cli/run-ts.mjs bench/gpu/pack.ts [--out bench/gpu/carry] [--offline]
 *        [--cache bench/gpu/.cache] [--node /usr/bin/node] [--limit-mib 64]
 *
 *   carry/
 *     node.xz                      this machine's node binary, stripped, xz -6
 *     app/phaselens.mjs            the CLI (src/cli/main.ts) bundled for Node by esbuild
 *     app/device-bench.mjs         bench/gpu/device-bench.ts bundled the same way
 *     app/node_modules/webgpu/     index.js, package.json, dist/linux-x64/dawn.node.xz
 *     vulkan/*.deb                 the Vulkan loader and glvnd from apt (online; LOADER_PACKAGES), or
 *     vulkan/lib*.so.*             this machine's copies of their libraries (offline fallback)
 *     vulkan/LIBS.tsv              package, library, carried file: what run.sh installs where missing
 *     MANIFEST.json                sizes, node version, source hash, what is missing
 *
 * Everything else the run reads is the working tree that travels with every call
 * (shaders/, weights-tools/assets/, test/fixtures/images/, bench/gpu/*.py), so the bundle
 * resolves `import.meta.url` against the repo root (PHASELENS_ROOT, set by run.sh)
 * instead of against its own location: each first-party module's `import.meta.url` is
 * rewritten at bundle time to the URL of its own path under that root.
 *
 * The limit: the device tool moves at most 64 MiB per call — the working tree (tracked
 * and untracked-not-ignored files) plus the carried paths. The pack prints both and
 * exits 1 when their sum is over `--limit-mib`. Compressed binaries are cached under
 * `--cache`, keyed by the sha256 of their source, so a repack costs seconds.
 *
 * `--offline` skips every network step (apt-get download); what could not be fetched is
 * listed in MANIFEST.json's `missing` and printed, and run.sh says what that means.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_OUT = join(ROOT, 'bench', 'gpu', 'carry');
export const DEFAULT_CACHE = join(ROOT, 'bench', 'gpu', '.cache');
export const LIMIT_MIB = 64;
const MIB = 2 ** 20;

export interface PackOptions {
  out?: string;
  cache?: string;
  node?: string;
  offline?: boolean;
  limitMib?: number;
  log?: (line: string) => void;
}

export interface PackResult {
  out: string;
  carryBytes: number;
  treeBytes: number;
  totalBytes: number;
  limitBytes: number;
  files: Record<string, number>;
  missing: string[];
  ok: boolean;
}

export class PackError extends Error {}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', maxBuffer: 64 * MIB });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * `src` stripped (when `strip` exists) and xz-compressed into `dest`, through a cache keyed
 * by the source's sha256 (compressing node takes about a minute on two cores).
 */
function compressCached(src: string, dest: string, cacheDir: string, log: (s: string) => void, doStrip: boolean): { stripped: boolean } {
  mkdirSync(cacheDir, { recursive: true });
  const key = `${sha256File(src).slice(0, 24)}${doStrip ? '-s' : ''}`;
  const cached = join(cacheDir, `${key}.xz`);
  const meta = `${cached}.json`;
  if (!existsSync(cached) || !existsSync(meta)) {
    let input = src;
    let stripped = false;
    const tmp = join(cacheDir, `${key}.${process.pid}.tmp`);
    if (doStrip) {
      const s = run('strip', ['-o', tmp, src]);
      if (s.ok) {
        input = tmp;
        stripped = true;
      } else log(`  strip failed (${s.stderr.trim() || 'not installed'}); compressing ${src} unstripped`);
    }
    log(`  compressing ${src} (${(statSync(input).size / MIB).toFixed(1)} MiB) with xz -6 ...`);
    const t0 = performance.now();
    const x = spawnSync('xz', ['-6', '-T1', '-c', input], { maxBuffer: 256 * MIB });
    if (x.status !== 0) throw new PackError(`xz failed on ${input}: ${x.stderr?.toString() || x.error}`);
    // unique temporary names, so two packs sharing a cache never write one file together
    const part = `${cached}.${process.pid}.part`;
    writeFileSync(part, x.stdout);
    renameSync(part, cached);
    writeFileSync(`${meta}.${process.pid}`, JSON.stringify({ source: src, stripped }));
    renameSync(`${meta}.${process.pid}`, meta);
    if (stripped) rmSync(tmp, { force: true });
    log(`  ${(x.stdout.length / MIB).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(cached, dest);
  return { stripped: (JSON.parse(readFileSync(meta, 'utf8')) as { stripped: boolean }).stripped };
}

/**
 * esbuild plugin: in first-party modules (under ROOT, outside node_modules),
 * `import.meta.url` / `.dirname` / `.filename` become the module's own path under the
 * root the bundle finds at run time (banner below), so `new URL('../../shaders/',
 * import.meta.url)` in src/gpu/node.ts still names the repo's shaders/.
 */
function rootRelativeMeta(): esbuild.Plugin {
  return {
    name: 'phaselens-root-relative-import-meta',
    setup(build) {
      build.onLoad({ filter: /\.(ts|mjs)$/ }, (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`) || !args.path.startsWith(ROOT)) return undefined;
        const rel = relative(ROOT, args.path).split(sep).join('/');
        const lit = JSON.stringify(rel);
        const contents = readFileSync(args.path, 'utf8')
          .replace(/\bimport\.meta\.url\b/g, `__plUrl(${lit})`)
          .replace(/\bimport\.meta\.dirname\b/g, `__plDirname(${lit})`)
          .replace(/\bimport\.meta\.filename\b/g, `__plFilename(${lit})`);
        return { contents, loader: args.path.endsWith('.ts') ? 'ts' : 'js' };
      });
    },
  };
}

/** Runs first in each bundle: `require` for bundled CommonJS, and the repo root. */
const BANNER = `#!/usr/bin/env node
import { createRequire as __plCreateRequire } from 'node:module';
import { dirname as __plPathDirname } from 'node:path';
import { fileURLToPath as __plToPath, pathToFileURL as __plToUrl } from 'node:url';
const require = __plCreateRequire(import.meta.url);
// The repo root: PHASELENS_ROOT (run.sh sets it), else four levels up from
// bench/gpu/carry/app/<bundle>.mjs.
const __plRoot = process.env.PHASELENS_ROOT
  ? __plToUrl(process.env.PHASELENS_ROOT.replace(/\\/*$/, '/')).href
  : new URL('../../../../', import.meta.url).href;
const __plUrl = (rel) => new URL(rel, __plRoot).href;
const __plFilename = (rel) => __plToPath(__plUrl(rel));
const __plDirname = (rel) => __plPathDirname(__plFilename(rel));
`;

export const BUNDLES: Record<string, string> = {
  'phaselens.mjs': join(ROOT, 'src', 'cli', 'main.ts'),
  'device-bench.mjs': join(ROOT, 'bench', 'gpu', 'device-bench.ts'),
};

async function bundle(entry: string, outfile: string): Promise<void> {
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['webgpu'],
    banner: { js: BANNER },
    // not minified: a stack trace from the lent machine, which cannot be debugged live, should name real functions
    minify: false,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [rootRelativeMeta()],
  });
}

/** Bytes of what travels besides the carry: tracked files and untracked files git does not ignore. */
export function workingTreeBytes(root = ROOT): number {
  const r = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root });
  if (!r.ok) throw new PackError(`git ls-files failed in ${root}: ${r.stderr}`);
  let total = 0;
  for (const f of new Set(r.stdout.split('\0').filter(Boolean))) {
    try {
      const s = statSync(join(root, f));
      if (s.isFile()) total += s.size;
    } catch {
      // deleted in the work tree but still in the index: it does not travel
    }
  }
  return total;
}

function dirFiles(dir: string, base = dir): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) Object.assign(out, dirFiles(p, base));
    else if (e.isFile()) out[relative(base, p).split(sep).join('/')] = statSync(p).size;
  }
  return out;
}

/**
 * The Vulkan loader, and glvnd: NVIDIA's Vulkan driver (libGLX_nvidia.so) is loaded through
 * glvnd's dispatch libraries, so a machine without them finds the ICD but no device (the
 * device README's recipe carries the same packages). Debian package → its library.
 */
export const LOADER_PACKAGES: readonly [string, string][] = [
  ['libvulkan1', 'libvulkan.so.1'],
  ['libglvnd0', 'libGLdispatch.so.0'],
  ['libegl1', 'libEGL.so.1'],
  ['libopengl0', 'libOpenGL.so.0'],
  ['libgl1', 'libGL.so.1'],
  ['libglx0', 'libGLX.so.0'],
  ['libgles2', 'libGLESv2.so.2'],
];

/**
 * LOADER_PACKAGES as .deb files (apt-get download), else this machine's copies of their
 * libraries; vulkan/LIBS.tsv says which file stands for which library. Returns a line for
 * the manifest; what is in neither form is added to `missing`.
 */
function loaderLibraries(dir: string, offline: boolean, log: (s: string) => void, missing: string[]): string {
  mkdirSync(dir, { recursive: true });
  const names = LOADER_PACKAGES.map(([pkg]) => pkg);
  const debOf = (pkg: string) => readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!offline) {
    const r = run('apt-get', ['download', ...names], { cwd: dir });
    if (!r.ok) log(`  apt-get download ${names.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  }
  const ld = run('ldconfig', ['-p']).stdout.split('\n');
  const rows: string[] = [];
  const how: string[] = [];
  for (const [pkg, lib] of LOADER_PACKAGES) {
    const deb = debOf(pkg);
    if (deb) {
      rows.push(`${pkg}\t${lib}\t${deb}`);
      how.push(`${pkg} .deb`);
      continue;
    }
    const path = ld.find((l) => l.trim().startsWith(`${lib} `) && /x86-64/.test(l))?.split('=>')[1]?.trim();
    if (path && existsSync(path)) {
      copyFileSync(path, join(dir, lib));
      rows.push(`${pkg}\t${lib}\t${lib}`);
      how.push(`copied ${path}`);
    } else {
      missing.push(`vulkan: no ${pkg} .deb and no x86-64 ${lib} on this machine; run.sh then needs the lent machine to have it`);
    }
  }
  writeFileSync(join(dir, 'LIBS.tsv'), rows.map((r) => r + '\n').join(''));
  const copied = how.some((h) => h.startsWith('copied'));
  return `${how.join(', ') || 'none'}${copied ? ` (no .deb${offline ? ': --offline' : ''}; run.sh puts copies on LD_LIBRARY_PATH)` : ''}`;
}

function sourceHash(): string {
  const r = run('bash', [join(ROOT, 'bench', 'gpu', 'source-hash.sh'), ROOT]);
  if (!r.ok) throw new PackError(`source-hash.sh failed: ${r.stderr}`);
  return r.stdout.trim();
}

export async function pack(opts: PackOptions = {}): Promise<PackResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const out = resolve(opts.out ?? DEFAULT_OUT);
  const cache = resolve(opts.cache ?? DEFAULT_CACHE);
  const nodeBin = opts.node ?? process.execPath;
  const limitBytes = (opts.limitMib ?? LIMIT_MIB) * MIB;
  const missing: string[] = [];
  if (process.arch !== 'x64' || process.platform !== 'linux') throw new PackError(`the lent machines are linux x86-64; this is ${process.platform}-${process.arch}, whose node and dawn.node would not run there`);
  const dawn = join(ROOT, 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node');
  if (!existsSync(dawn)) throw new PackError(`${dawn} is missing: run npm install first`);

  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'app'), { recursive: true });
  log(`packing ${relative(ROOT, out) || out}`);

  log('node binary:');
  const nodeInfo = compressCached(nodeBin, join(out, 'node.xz'), cache, log, true);
  const version = run(nodeBin, ['--version']).stdout.trim();

  log('bundles (esbuild, platform node, webgpu external):');
  for (const [name, entry] of Object.entries(BUNDLES)) {
    await bundle(entry, join(out, 'app', name));
    chmodSync(join(out, 'app', name), 0o755);
    log(`  app/${name}  ${(statSync(join(out, 'app', name)).size / MIB).toFixed(2)} MiB  (from ${relative(ROOT, entry)})`);
  }

  log('webgpu package (index.js, package.json, dawn.node for linux-x64):');
  const wg = join(out, 'app', 'node_modules', 'webgpu');
  mkdirSync(join(wg, 'dist', 'linux-x64'), { recursive: true });
  for (const f of ['index.js', 'package.json', 'LICENSE.md']) copyFileSync(join(ROOT, 'node_modules', 'webgpu', f), join(wg, f));
  compressCached(dawn, join(wg, 'dist', 'linux-x64', 'dawn.node.xz'), cache, log, true);

  log('Vulkan loader and glvnd:');
  const vulkan = loaderLibraries(join(out, 'vulkan'), !!opts.offline, log, missing);
  log(`  ${vulkan}`);

  const files = dirFiles(out);
  const carryBytes = Object.values(files).reduce((a, b) => a + b, 0);
  const treeBytes = workingTreeBytes();
  const totalBytes = carryBytes + treeBytes;
  const ok = totalBytes <= limitBytes;
  const manifest = {
    format: 'phaselens-gpu-carry',
    version: 1,
    created: new Date().toISOString(),
    source_hash: sourceHash(),
    node: { version, source: nodeBin, stripped: nodeInfo.stripped },
    vulkan,
    missing,
    carry_bytes: carryBytes,
    tree_bytes: treeBytes,
    files,
  };
  writeFileSync(join(out, 'MANIFEST.json'), JSON.stringify(manifest, null, 1) + '\n');
  const mib = (b: number) => `${(b / MIB).toFixed(1)} MiB`;
  log(`carry ${mib(carryBytes)} + working tree ${mib(treeBytes)} = ${mib(totalBytes)} of the ${mib(limitBytes)} a device call may move`);
  for (const m of missing) log(`MISSING: ${m}`);
  if (!ok) log(`REFUSED: ${mib(totalBytes)} is over the limit of ${mib(limitBytes)}; the device tool would not send this (shrink the carry or the tree)`);
  return { out, carryBytes, treeBytes, totalBytes, limitBytes, files, missing, ok };
}

function parseArgs(argv: string[]): PackOptions {
  const o: PackOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new PackError(`${a} needs a value`);
      return v;
    };
    if (a === '--out') o.out = val();
    else if (a === '--cache') o.cache = val();
    else if (a === '--node') o.node = val();
    else if (a === '--offline') o.offline = true;
    else if (a === '--limit-mib') {
      const v = val();
      o.limitMib = Number(v);
      if (!(o.limitMib > 0)) throw new PackError(`--limit-mib must be a positive number, got ${v}`);
    } else if (a === '-h' || a === '--help') {
      console.log('usage: node src/cli/run-ts.mjs bench/gpu/pack.ts [--out DIR] [--cache DIR] [--node BIN] [--offline] [--limit-mib N]');
      process.exit(0);
    } else throw new PackError(`unknown argument ${a}`);
  }
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const r = await pack(parseArgs(process.argv.slice(2)));
    process.exit(r.ok ? 0 : 1);
  } catch (e) {
    if (e instanceof PackError) {
      console.error(`pack: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
}
