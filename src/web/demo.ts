/**
 * The demo's inputs, served beside the page by `npm run build:web` (src/web/build.ts):
 * the tiny checkpoints of every family built from the CLI demo's fixed seed, and the six
 * COCO val2017 images with their captions. `demo/manifest.json` lists every file; they
 * are fetched into the same Picked shape a user's pick has, so the demo runs the same path.
 */
import { UserError } from '../errors.ts';
import type { Picked } from './picked.ts';

export const DEMO_DIR = 'demo';
export const DEMO_MANIFEST = `${DEMO_DIR}/manifest.json`;

/** manifest.json: for each folder under demo/ (one per family of the table, by model_type, and `data`), its files (paths relative to it). */
export type DemoManifest = Record<string, { name: string; files: string[] }>;

export async function fetchDemo(which: string, onFile?: (done: number, total: number) => void): Promise<Picked> {
  const manifest = (await get(DEMO_MANIFEST).then((r) => r.json())) as DemoManifest;
  const entry = manifest[which];
  if (!entry) throw new UserError(`demo: ${DEMO_MANIFEST} has no ${which}/; the demo files are written by \`npm run build:web\``);
  const files = new Map<string, Blob>();
  for (const f of entry.files) {
    files.set(f, await (await get(`${DEMO_DIR}/${which}/${f}`)).blob());
    onFile?.(files.size, entry.files.length);
  }
  return { name: entry.name, files };
}

async function get(url: string): Promise<Response> {
  const r = await fetch(url).catch((e: Error) => {
    throw new UserError(`demo: cannot fetch ${url} (${e.message})`);
  });
  if (!r.ok) throw new UserError(`demo: ${url}: HTTP ${r.status}; the demo files are written by \`npm run build:web\``);
  return r;
}
