/**
 * Bundles phaselens for the browser with esbuild (a devDependency), with every
 * shaders/**.wgsl inlined as a map keyed by its path under shaders/.
 *
 *   node src/cli/run-ts.mjs src/browser/build.ts [outfile]   → out/browser/phaselens.js
 *
 * The shader map replaces the stand-in src/browser/shaders.ts at bundle time
 * (shaderMapPlugin), so src/gpu/browser.ts needs no bundler-specific import syntax and
 * type-checks as plain TypeScript. The Node-only files (src/gpu/node.ts, src/io/*-node.ts)
 * are not reachable from the browser entry; esbuild fails the build if any `node:`
 * import slips in, which the browser test relies on.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SHADER_DIR = join(ROOT, 'shaders');
const STAND_IN = join(ROOT, 'src', 'browser', 'shaders.ts');
export const BROWSER_ENTRY = join(ROOT, 'src', 'browser', 'index.ts');

/** Every .wgsl under `dir`, keyed by its '/'-separated path relative to `dir`, sorted. */
export function readShaderTree(dir = SHADER_DIR): Record<string, string> {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.wgsl')) files.push(p);
    }
  };
  walk(dir);
  const map: Record<string, string> = {};
  for (const f of files.sort()) map[relative(dir, f).split(sep).join('/')] = readFileSync(f, 'utf8');
  return map;
}

/** esbuild plugin: serves src/browser/shaders.ts as `export const SHADERS = {…every shader…}`. */
export function shaderMapPlugin(dir = SHADER_DIR): esbuild.Plugin {
  const escaped = STAND_IN.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return {
    name: 'phaselens-shaders',
    setup(build) {
      build.onLoad({ filter: new RegExp(`^${escaped}$`) }, () => {
        const map = readShaderTree(dir);
        return {
          contents: `export const SHADERS = ${JSON.stringify(map, null, 1)};\n`,
          loader: 'js',
          watchDirs: [dir, ...Object.keys(map).map((k) => dirname(join(dir, k)))],
          watchFiles: Object.keys(map).map((k) => join(dir, k)),
        };
      });
    },
  };
}

export interface BundleOptions {
  /** Entry module (default src/browser/index.ts). */
  entry?: string;
  /** Also write the bundle here. */
  outfile?: string;
  minify?: boolean;
  /** Inline a source map (stack traces in the page then name the .ts files). */
  sourcemap?: boolean;
}

/** Bundles `entry` for the browser as one ES module and returns its text. */
export async function bundleBrowser(opts: BundleOptions = {}): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [opts.entry ?? BROWSER_ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    minify: opts.minify ?? false,
    sourcemap: opts.sourcemap ? 'inline' : false,
    logLevel: 'silent',
    plugins: [shaderMapPlugin()],
  });
  const text = result.outputFiles[0].text;
  if (opts.outfile) {
    mkdirSync(dirname(opts.outfile), { recursive: true });
    writeFileSync(opts.outfile, text);
  }
  return text;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const outfile = resolve(process.argv[2] ?? join(ROOT, 'out', 'browser', 'phaselens.js'));
  const text = await bundleBrowser({ outfile });
  console.log(`wrote ${outfile} (${(text.length / 1024).toFixed(0)} KiB, ${Object.keys(readShaderTree()).length} shaders)`);
}
