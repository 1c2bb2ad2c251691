/**
 * `npm run build:web`: the page as a static folder that works from any static server
 * (default out/web/):
 *
 *   index.html, page.css      from web/
 *   phaselens-page.js         src/web/main.ts bundled by esbuild, every shader inlined
 *                             (src/browser/build.ts); esbuild refuses any `node:` import
 *   demo/<family>/            what the demo button of each family of the table runs: its
 *                             shipped organism where it has one (weights-tools/organisms/,
 *                             as `npm run demo`), else the tiny checkpoint (make-tiny, seed 0, f16)
 *   demo/scenes/              the organisms' 48 evaluation scenes with their captions (COCO form)
 *   demo/data/                the six COCO val2017 images with their captions (test/fixtures/coco_mini),
 *                             for the families without an organism
 *   demo/manifest.json        every demo file, and each family's data folder, for the page to fetch
 *
 *   node src/cli/run-ts.mjs src/web/build.ts [OUT_DIR]
 */
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleBrowser } from '../browser/build.ts';
import { isMain } from '../cli/standalone.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import type { OrganismArch } from '../../weights-tools/train/organisms.ts';
import { EVAL_SCENES, organismDir } from '../../weights-tools/train/shipped.ts';
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
  const organism = (f: string) => existsSync(organismDir(f as OrganismArch));
  for (const arch of FAMILY_NAMES) {
    if (organism(arch)) cpSync(organismDir(arch as OrganismArch), join(demo, arch), { recursive: true });
    else await makeTiny({ arch, out: join(demo, arch), seed: DEMO_SEED, dtype: 'f16' });
  }
  cpSync(join(ROOT, 'test', 'fixtures', 'coco_mini'), join(demo, 'data'), { recursive: true });
  // the scenes' captions and images only: the folder's other index files would be read as another kind of data set
  cpSync(join(EVAL_SCENES, 'captions.json'), join(demo, 'scenes', 'captions.json'));
  cpSync(join(EVAL_SCENES, 'images'), join(demo, 'scenes', 'images'), { recursive: true });
  const entry = (name: string, dir: string) => ({ name, files: listTree(join(demo, dir)) });
  const manifest: DemoManifest = {
    ...Object.fromEntries(
      FAMILY_NAMES.map((f) => [f, organism(f) ? { ...entry(basename(organismDir(f as OrganismArch)), f), data: 'scenes' } : { ...entry(`${f}-tiny-seed${DEMO_SEED}`, f), data: 'data' }]),
    ),
    data: entry('coco_mini', 'data'),
    scenes: entry('shapes-eval-scenes', 'scenes'),
  };
  writeFileSync(join(demo, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  return { out, bytes: listTree(out).reduce((n, f) => n + statSync(join(out, f)).size, 0) };
}

if (isMain(import.meta.url)) {
  const { out, bytes } = await buildWeb(resolve(process.argv[2] ?? DEFAULT_WEB_OUT));
  console.log(`wrote ${out} (${(bytes / 2 ** 20).toFixed(1)} MiB); serve it with any static server, or \`npm run web\``);
}
