/**
 * `npm run build:web`: the page as a static folder that works from any static server
 * (default out/web/):
 *
 *   index.html, page.css      from web/
 *   phaselens-page.js         src/web/main.ts bundled by esbuild, every shader inlined
 *                             (src/browser/build.ts); esbuild refuses any `node:` import
 *   demo/llava/, demo/instructblip/   the CLI demo's tiny checkpoints (make-tiny, seed 0, f16)
 *   demo/data/                the six COCO val2017 images with their captions (test/fixtures/coco_mini)
 *   demo/manifest.json        every demo file, for the page to fetch
 *
 *   node src/cli/run-ts.mjs src/web/build.ts [OUT_DIR]
 */
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleBrowser } from '../browser/build.ts';
import { isMain } from '../cli/standalone.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { FAMILY_NAMES } from '../models/registry.ts';
import { DEMO_DIR, type DemoManifest } from './demo.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_WEB_OUT = join(ROOT, 'out', 'web');
const DEMO_SEED = 0;

/** Every file under `dir`, as '/'-separated paths relative to it, sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

export async function buildWeb(out = DEFAULT_WEB_OUT): Promise<{ out: string; bytes: number }> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  cpSync(join(ROOT, 'web'), out, { recursive: true });
  await bundleBrowser({ entry: join(ROOT, 'src', 'web', 'main.ts'), outfile: join(out, 'phaselens-page.js'), minify: true, sourcemap: false });

  const demo = join(out, DEMO_DIR);
  for (const arch of FAMILY_NAMES) await makeTiny({ arch, out: join(demo, arch), seed: DEMO_SEED, dtype: 'f16' });
  cpSync(join(ROOT, 'test', 'fixtures', 'coco_mini'), join(demo, 'data'), { recursive: true });
  const entry = (name: string, dir: string) => ({ name, files: listTree(join(demo, dir)) });
  const manifest: DemoManifest = {
    ...Object.fromEntries(FAMILY_NAMES.map((f) => [f, entry(`${f}-tiny-seed${DEMO_SEED}`, f)])),
    data: entry('coco_mini', 'data'),
  };
  writeFileSync(join(demo, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  return { out, bytes: listTree(out).reduce((n, f) => n + statSync(join(out, f)).size, 0) };
}

if (isMain(import.meta.url)) {
  const { out, bytes } = await buildWeb(resolve(process.argv[2] ?? DEFAULT_WEB_OUT));
  console.log(`wrote ${out} (${(bytes / 2 ** 20).toFixed(1)} MiB); serve it with any static server, or \`npm run web\``);
}
