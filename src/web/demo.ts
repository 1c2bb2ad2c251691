/**
 * The demo's inputs, served beside the page by `npm run build:web` (src/web/build.ts):
 * per family of the table its shipped organism with the evaluation scenes it was made for
 * (as `npm run demo`), or, without one, the tiny checkpoint with the six COCO val2017
 * images. `demo/manifest.json` lists every file and each model's data folder; they are
 * fetched into the same Picked shape a user's pick has, so the demo runs the same path.
 */
import { UserError } from '../errors.ts';
import type { Picked } from './picked.ts';

export const DEMO_DIR = 'demo';
export const DEMO_MANIFEST = `${DEMO_DIR}/manifest.json`;

/**
 * manifest.json: for each folder under demo/ (one per family of the table, by model_type,
 * and the data folders `data`, `scenes`), its files (paths relative to it); a model's
 * entry names the data folder its demo runs on.
 */
export type DemoManifest = Record<string, { name: string; files: string[]; data?: string }>;

/** A family's demo: its checkpoint and the data set it runs on. */
export async function fetchDemo(family: string, onFile?: (what: string, done: number, total: number) => void): Promise<{ model: Picked; data: Picked }> {
  const manifest = (await get(DEMO_MANIFEST).then((r) => r.json())) as DemoManifest;
  const model = await fetchFolder(manifest, family, (d, t) => onFile?.('checkpoint', d, t));
  const data = await fetchFolder(manifest, manifest[family].data ?? 'data', (d, t) => onFile?.('images', d, t));
  return { model, data };
}

async function fetchFolder(manifest: DemoManifest, which: string, onFile: (done: number, total: number) => void): Promise<Picked> {
  const entry = manifest[which];
  if (!entry) throw new UserError(`demo: ${DEMO_MANIFEST} has no ${which}/; the demo files are written by \`npm run build:web\``);
  const files = new Map<string, Blob>();
  for (const f of entry.files) {
    files.set(f, await (await get(`${DEMO_DIR}/${which}/${f}`)).blob());
    onFile(files.size, entry.files.length);
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
