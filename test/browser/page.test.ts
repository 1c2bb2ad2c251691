/**
 * The page (src/web/, web/) in real headless Chromium: `buildWeb` writes the static
 * folder exactly as `npm run build:web` does, `serveStatic` serves it on 127.0.0.1 as
 * `npm run web` does, and playwright-core drives Debian's Chromium (chromium.ts).
 *
 * Parity: tiny checkpoints (make-tiny, seed 0, f16; the demo buttons run the organisms,
 * checked on their own); two COCO val2017 images with their captions go in through the page's real file
 * inputs (`setInputFiles`: a COCO folder through the data set folder input for LLaVA, two
 * image files + captions.json through the images input for InstructBLIP). The page's
 * downloaded `<id>.json` and `aggregate.json` must equal the files of
 * `node src/cli/phaselens.mjs analyze` on the same inputs (Node: Dawn on lavapipe):
 * every number within 1e-5 · max(1, |Node's value|) — the fp32 kernel tolerance, since
 * the two runs differ only in the adapters' f32 rounding (SwiftShader / GLES vs lavapipe,
 * different reduction orders); integers (token ids, positions) must be equal, and so must
 * every string except the image path (absolute under Node, the path inside the pick in
 * the page: their file names must agree). Node runs in the checkpoint's parent folder with
 * `--model <folder name>`, so `model` is the same string on both sides.
 *
 * Chameleon (core adapter only, to keep the suite short): a JPEG and a PNG with
 * transparency through the images input, compared with Node the same way (its processor's
 * LANCZOS and blend onto white run in the page), and its VQ tokens placed on the image.
 *
 * On the core adapter LLaVA is also compared with Node's Dawn on Chromium's own SwiftShader
 * (a Vulkan ICD file pointing at libvk_swiftshader.so): the same adapter class on both sides.
 *
 * Each adapter class takes a full-page screenshot of the result, checked for the figures
 * (SVGs and the heatmap PNG decoded) and for pixel variance, and kept under
 * test/.cache/browser-page/. Bad input (core adapter only): each ends as a message in the
 * page, and the page runs the next job. A small adapter and a lost device are made with
 * `deviceControl`, an init script that wraps requestDevice (the page has no test hooks).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { decode as decodePng } from 'fast-png';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../src/web/build.ts';
import { serveStatic, type Served } from '../../src/web/serve.ts';
import { makeTiny } from '../../weights-tools/make-tiny.ts';
import { ADAPTERS, launchChromium, type AdapterClass } from './chromium.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COCO = join(ROOT, 'test', 'fixtures', 'coco_mini');
const IMAGES = ['000000000802.jpg', '000000022192.jpg'];
// 40 × 30 RGBA, the top 24 rows partly transparent (test/fixtures/PROVENANCE.md)
const RGBA = '000000039769-rgba.png';
const SHOTS = join(ROOT, 'test', '.cache', 'browser-page');
const TOL = 1e-5;
// One page run of two tiny images takes 5–8 s on SwiftShader with 2 cores (most of it
// compiling pipelines); a slow or busy CI machine gets ten times that.
const RUN_MS = 80_000;
// A test is a few runs, a Node run and the downloads.
const TEST_MS = 300_000;

const work = mkdtempSync(join(tmpdir(), 'phaselens-page-'));
let site: Promise<{ served: Served; tiny: string; coco2: string; plain2: string; alpha2: string }> | undefined;

/** The built site, served, the tiny checkpoints and the two-image data sets (once per file). */
function setUp() {
  site ??= (async () => {
    const out = join(work, 'web');
    await buildWeb(out);
    // the demo buttons run the organisms; the parity runs use tiny checkpoints (seed 0, f16)
    const tiny = join(work, 'tiny');
    for (const arch of ['llava', 'instructblip', 'chameleon']) await makeTiny({ arch, out: join(tiny, arch), seed: 0, dtype: 'f16' });
    const coco2 = join(work, 'coco2');
    const ann = JSON.parse(readFileSync(join(COCO, 'annotations', 'captions_val2017.json'), 'utf8'));
    const keep = ann.images.filter((im: { file_name: string }) => IMAGES.includes(im.file_name));
    const ids = new Set(keep.map((im: { id: number }) => im.id));
    mkdirSync(join(coco2, 'annotations'), { recursive: true });
    mkdirSync(join(coco2, 'val2017'));
    writeFileSync(join(coco2, 'annotations', 'captions_val2017.json'), JSON.stringify({ ...ann, images: keep, annotations: ann.annotations.filter((a: { image_id: number }) => ids.has(a.image_id)) }));
    for (const f of IMAGES) copyFileSync(join(COCO, 'val2017', f), join(coco2, 'val2017', f));
    // the same two images as a plain folder with captions.json
    const plain2 = join(work, 'plain2');
    mkdirSync(plain2);
    const captions: Record<string, string[]> = {};
    for (const im of keep) {
      copyFileSync(join(coco2, 'val2017', im.file_name), join(plain2, im.file_name));
      captions[im.file_name] = ann.annotations.filter((a: { image_id: number }) => a.image_id === im.id).map((a: { caption: string }) => a.caption.trim());
    }
    writeFileSync(join(plain2, 'captions.json'), JSON.stringify(captions));
    // Chameleon's pick: a COCO JPEG and a PNG with transparency (its processor blends onto white)
    const alpha2 = join(work, 'alpha2');
    mkdirSync(alpha2);
    copyFileSync(join(COCO, 'val2017', IMAGES[0]), join(alpha2, IMAGES[0]));
    copyFileSync(join(ROOT, 'test', 'fixtures', 'images', RGBA), join(alpha2, RGBA));
    return { served: await serveStatic(out), tiny, coco2, plain2, alpha2 };
  })();
  return site;
}

afterAll(async () => {
  await (await site?.catch(() => undefined))?.served.close();
  rmSync(work, { recursive: true, force: true });
});

/**
 * `phaselens analyze` under Node, run in the checkpoint's parent folder; returns its output
 * folder, wall time and the adapter line it printed. `vulkanIcd`: the Vulkan driver to use
 * instead of the system's (lavapipe).
 */
async function nodeAnalyze(model: string, data: string, chat: boolean, vulkanIcd?: string): Promise<{ out: string; ms: number; adapter: string }> {
  const out = mkdtempSync(join(work, 'node-'));
  const t0 = performance.now();
  const { stderr } = await promisify(execFile)(process.execPath, [join(ROOT, 'src', 'cli', 'phaselens.mjs'), 'analyze', '--model', basename(model), '--data', data, '--out', out, ...(chat ? ['--chat'] : [])], {
    cwd: dirname(model),
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? work, ...(vulkanIcd && { VK_DRIVER_FILES: vulkanIcd, VK_ICD_FILENAMES: vulkanIcd }) },
  });
  return { out, ms: performance.now() - t0, adapter: /^phaselens: GPU (.*)$/m.exec(stderr)?.[1] ?? '?' };
}

/**
 * A Vulkan ICD file for the SwiftShader that Debian's Chromium ships, so Node's Dawn runs
 * on the same adapter class as the page's core adapter (PHASELENS_SWIFTSHADER_LIB: another
 * libvk_swiftshader.so).
 */
function swiftShaderIcd(): string {
  const lib = process.env.PHASELENS_SWIFTSHADER_LIB ?? '/usr/lib/chromium/libvk_swiftshader.so';
  if (!existsSync(lib)) throw new Error(`${lib} not found: Debian's chromium ships it; set PHASELENS_SWIFTSHADER_LIB to another libvk_swiftshader.so`);
  const icd = join(work, 'swiftshader_icd.json');
  writeFileSync(icd, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: lib, api_version: '1.3.0' } }));
  return icd;
}

interface PageRun {
  state: string;
  message: string;
  /** Downloaded files by name. */
  files: Map<string, string>;
  loadMs: number;
  analyzeMs: number;
  /** Per image; the first includes compiling the pipelines. */
  itemMs: string;
}

/** Picks the inputs through the page's file inputs, presses Analyse, waits, and downloads every offered file. */
async function runPage(page: Page, inputs: { model?: string; data?: string; images?: string[] }): Promise<PageRun> {
  if (inputs.model) await page.setInputFiles('#model-input', inputs.model);
  if (inputs.data) await page.setInputFiles('#data-input', inputs.data);
  if (inputs.images) await page.setInputFiles('#images-input', inputs.images);
  await page.click('#run');
  await page.waitForFunction(() => document.body.dataset.state !== 'running', undefined, { timeout: RUN_MS });
  const state = (await page.getAttribute('body', 'data-state')) ?? '';
  const message = (await page.textContent('#message')) ?? '';
  const files = new Map<string, string>();
  if (state === 'done') {
    for (const a of await page.locator('#downloads a').all()) {
      const [d] = await Promise.all([page.waitForEvent('download'), a.click()]);
      files.set(d.suggestedFilename(), readFileSync(await d.path(), 'utf8'));
    }
  }
  const timing = async (k: string) => Number(await page.getAttribute('#timings', k));
  return { state, message, files, loadMs: await timing('data-load-ms'), analyzeMs: await timing('data-analyze-ms'), itemMs: (await page.getAttribute('#timings', 'data-item-ms')) ?? '' };
}

/**
 * Walks both JSON values; returns the largest |page − node| over all numbers and fails on
 * the first structural or string difference (naming its path). `image` fields: file names.
 */
function compareJson(page: unknown, node: unknown, path = ''): number {
  if (typeof node === 'number') {
    expect(typeof page, `${path}: type`).toBe('number');
    const d = Math.abs((page as number) - node);
    if (Number.isInteger(node) && Number.isInteger(page)) expect(page, `${path}: integer`).toBe(node);
    expect(d, `${path}: page ${page} vs node ${node}`).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(node)));
    return d;
  }
  if (Array.isArray(node)) {
    expect(Array.isArray(page) && page.length, `${path}: length`).toBe(node.length);
    return node.reduce((m: number, v, i) => Math.max(m, compareJson((page as unknown[])[i], v, `${path}[${i}]`)), 0);
  }
  if (node && typeof node === 'object') {
    expect(Object.keys(page as object).sort(), `${path}: keys`).toEqual(Object.keys(node).sort());
    let m = 0;
    for (const [k, v] of Object.entries(node)) {
      const p = (page as Record<string, unknown>)[k];
      if (k === 'image' && typeof v === 'string') expect(basename(p as string), `${path}.image`).toBe(basename(v));
      else m = Math.max(m, compareJson(p, v, path ? `${path}.${k}` : k));
    }
    return m;
  }
  expect(page, path).toEqual(node);
  return 0;
}

/** The page's files against Node's output folder; returns the largest difference. */
function compareRun(run: PageRun, nodeOut: string): number {
  const ids = readdirSync(join(nodeOut, 'images')).filter((f) => f.endsWith('.json'));
  expect(ids).toHaveLength(IMAGES.length);
  let max = compareJson(JSON.parse(run.files.get('aggregate.json')!), JSON.parse(readFileSync(join(nodeOut, 'aggregate.json'), 'utf8')), 'aggregate');
  for (const f of ids) {
    expect(run.files.has(f), `the page offers ${f}`).toBe(true);
    max = Math.max(max, compareJson(JSON.parse(run.files.get(f)!), JSON.parse(readFileSync(join(nodeOut, 'images', f), 'utf8')), f));
  }
  return max;
}

/** Figures rendered (SVGs, the PNGs decoded) and a screenshot that is not blank. */
async function checkScreenshot(page: Page, name: string): Promise<void> {
  const figures = await page.locator('#figures figure').count();
  expect(figures).toBeGreaterThanOrEqual(4); // fig1, fig3, fig4 heatmap, fig4b; fig5 with captions
  expect(await page.locator('#figures svg').count()).toBeGreaterThanOrEqual(3);
  // the heatmap, and Fig. 4c per patch view where the family has patches
  expect(await page.locator('#figures img').evaluateAll((imgs: HTMLImageElement[]) => imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0))).toBe(true);
  mkdirSync(SHOTS, { recursive: true });
  const file = join(SHOTS, `${name}.png`);
  const png = decodePng(await page.screenshot({ fullPage: true, path: file }));
  const ch = png.channels;
  let [n, sum, sq] = [0, 0, 0];
  for (let i = 0; i < png.data.length; i += ch * 7) {
    const y = 0.299 * png.data[i] + 0.587 * png.data[i + 1] + 0.114 * png.data[i + 2];
    [n, sum, sq] = [n + 1, sum + y, sq + y * y];
  }
  const variance = sq / n - (sum / n) ** 2;
  console.log(`[page] screenshot ${file}: ${png.width}×${png.height}, luminance variance ${variance.toFixed(0)}`);
  // a white page is 0; text and the figures' lines on white give a few hundred
  expect(variance).toBeGreaterThan(100);
  expect(png.height).toBeGreaterThan(2000);
}

interface DeviceControlWindow {
  phaselensDevices: { last?: GPUDevice; limitBytes?: number };
}

/**
 * Runs in the page before its own code: keeps the last device the page creates (to lose
 * it) and, when `limitBytes` is set, makes that device report buffer limits of that size,
 * as a small adapter would (phaselens reads its limits from the device).
 */
function deviceControl(): void {
  const control: DeviceControlWindow['phaselensDevices'] = {};
  (window as unknown as DeviceControlWindow).phaselensDevices = control;
  const orig = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, d?: GPUDeviceDescriptor) {
    const device = await orig.call(this, d);
    const limit = control.limitBytes;
    if (limit !== undefined) {
      const real = device.limits;
      const small = new Proxy(real, { get: (t, k) => (k === 'maxBufferSize' || k === 'maxStorageBufferBindingSize' ? limit : (t as unknown as Record<string | symbol, unknown>)[k]) });
      Object.defineProperty(device, 'limits', { value: small });
    }
    control.last = device;
    return device;
  };
}

async function openPage(a: AdapterClass) {
  const { served } = await setUp();
  const chromium = await launchChromium(a);
  const page = await chromium.browser.newPage({ acceptDownloads: true });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript(deviceControl);
  await page.goto(`${served.url}${a.featureLevel ? `?adapter=${a.featureLevel}` : ''}`);
  return { chromium, page, errors };
}

for (const A of ADAPTERS) {
  describe(`page: ${A.name}`, { timeout: TEST_MS }, () => {
    let opened: ReturnType<typeof openPage> | undefined;
    const open = () => (opened ??= openPage(A));
    afterAll(async () => {
      const o = await opened?.catch(() => undefined);
      await o?.chromium.close();
    });

    it('LLaVA: COCO folder through the data set input; downloads equal the Node run; hover; screenshot', async (ctx) => {
      const { page, errors } = await open();
      const { tiny, coco2 } = await setUp();
      const model = join(tiny, 'llava');
      const run = await runPage(page, { model, data: coco2 });
      if (A.featureLevel && /returned no adapter/.test(run.message)) ctx.skip(`no ${A.name} adapter in this Chromium: ${run.message}`);
      expect(run.message, 'page message').toBe('');
      expect(run.state).toBe('done');
      const node = await nodeAnalyze(model, `coco:${join(coco2, 'annotations', 'captions_val2017.json')}:${join(coco2, 'val2017')}`, true);
      const max = compareRun(run, node.out);
      console.log(`[page ${A.name}] llava: max |page − node ${node.adapter}| = ${max.toExponential(2)}; page load ${run.loadMs} ms, analyse ${run.analyzeMs} ms (per image ${run.itemMs}); node CLI wall ${node.ms.toFixed(0)} ms`);
      if (!A.featureLevel) {
        // the same adapter class on both sides: Node's Dawn on Chromium's SwiftShader
        const same = await nodeAnalyze(model, `coco:${join(coco2, 'annotations', 'captions_val2017.json')}:${join(coco2, 'val2017')}`, true, swiftShaderIcd());
        expect(same.adapter).toMatch(/swiftshader/i);
        console.log(`[page ${A.name}] llava: max |page − node ${same.adapter}| = ${compareRun(run, same.out).toExponential(2)}; node CLI wall ${same.ms.toFixed(0)} ms`);
      }
      // fp16 weights on an adapter without shader-f16: the packed path (unpack2x16float) ran
      expect(await page.textContent('#adapter')).toMatch(/shader-f16 false/);
      expect(await page.textContent('#timings')).toMatch(/weights f16/);
      // recall was computed (the captions came through the pick)
      expect(JSON.parse(run.files.get('000000000802.json')!).recall).toHaveLength(4);

      // the centre patch of the 3×3 grid is visual token 4; one row per hidden-state index 0..3
      const canvas = page.locator('#hover-canvas');
      const box = (await canvas.boundingBox())!;
      await canvas.hover({ position: { x: box.width / 2, y: box.height / 2 } });
      await expect.poll(() => page.textContent('#hover-table')).toMatch(/^Visual token 4 \(patch row 1, column 1\)/);
      expect(await page.locator('#hover-table table.lens tr').count()).toBe(1 + 4);
      const profile = (await page.textContent('#profile')) ?? '';
      if (A.featureLevel) expect(profile).toMatch(/no timestamp-query/);
      else expect(await page.locator('#profile-table tr').count()).toBeGreaterThan(5);
      await checkScreenshot(page, `llava-${A.featureLevel ?? 'core'}`);
      expect(errors).toEqual([]);
    });

    it('InstructBLIP: two image files + captions.json through the images input; downloads equal the Node run', async (ctx) => {
      const { page, errors } = await open();
      const { tiny, plain2 } = await setUp();
      const model = join(tiny, 'instructblip');
      const run = await runPage(page, { model, images: readdirSync(plain2).map((f) => join(plain2, f)) });
      if (A.featureLevel && /returned no adapter/.test(run.message)) ctx.skip(`no ${A.name} adapter in this Chromium`);
      expect(run.message, 'page message').toBe('');
      expect(run.state).toBe('done');
      const node = await nodeAnalyze(model, `folder:${plain2}`, false);
      const max = compareRun(run, node.out);
      console.log(`[page ${A.name}] instructblip: max |page − node ${node.adapter}| = ${max.toExponential(2)}; page load ${run.loadMs} ms, analyse ${run.analyzeMs} ms (per image ${run.itemMs}); node CLI wall ${node.ms.toFixed(0)} ms`);
      // InstructBLIP's 32 visual tokens are query outputs: a strip of cells, the first at the top left
      await page.locator('#hover-canvas').hover({ position: { x: 5, y: 5 } });
      await expect.poll(() => page.textContent('#hover-table')).toMatch(/^Visual token 0 \(query 0\)/);
      await checkScreenshot(page, `instructblip-${A.featureLevel ?? 'core'}`);
      expect(errors).toEqual([]);
    });

    if (A.featureLevel) return;

    it('Chameleon: a JPEG and a transparent PNG through the images input; downloads equal the Node run; its image tokens placed on the image', async () => {
      const { page, errors } = await open();
      const { tiny, alpha2 } = await setUp();
      const model = join(tiny, 'chameleon');
      const run = await runPage(page, { model, images: readdirSync(alpha2).map((f) => join(alpha2, f)) });
      expect(run.message, 'page message').toBe('');
      expect(run.state).toBe('done');
      // the same decoding and ChameleonImageProcessor (LANCZOS, alpha blended onto white) on both sides, else the VQ codes and all after them differ
      const node = await nodeAnalyze(model, `folder:${alpha2}`, false);
      const max = compareRun(run, node.out);
      console.log(`[page ${A.name}] chameleon: max |page − node ${node.adapter}| = ${max.toExponential(2)}; page load ${run.loadMs} ms, analyse ${run.analyzeMs} ms (per image ${run.itemMs})`);
      expect(await page.textContent('#timings')).toMatch(/^chameleon \(chameleon, weights f16, /);
      // make-tiny's 16 px crop, 2 VQ levels: an 8 × 8 latent grid; the canvas centre is row 4, column 4
      await page.selectOption('#hover-image', { label: RGBA.replace(/\.png$/, '') });
      expect(await page.textContent('#hover-table')).toMatch(/^64 patch tokens \(patch 8×8\)/);
      const canvas = page.locator('#hover-canvas');
      const box = (await canvas.boundingBox())!;
      await canvas.hover({ position: { x: box.width / 2 + 1, y: box.height / 2 + 1 } });
      await expect.poll(() => page.textContent('#hover-table')).toMatch(/^Visual token 36 \(patch row 4, column 4\)/);
      expect(await page.locator('#hover-table table.lens tr').count()).toBe(1 + 4); // hidden states 0..3 of 3 layers
      expect(errors).toEqual([]);
    });

    it('the demo button runs the shipped organism on its 48 evaluation scenes without any pick: the recall is above 0', async () => {
      const { page } = await open();
      await page.click('#demo-llava');
      await page.waitForFunction(() => document.body.dataset.state !== 'running', undefined, { timeout: RUN_MS * 3 });
      expect(await page.textContent('#message')).toBe('');
      expect(await page.textContent('#timings')).toMatch(/^shapes-llava \(llava, weights f16, precision f32\); coco:shapes-eval-scenes\/captions\.json:shapes-eval-scenes\/images; .*48 images analysed/);
      expect(await page.locator('#downloads a').count()).toBe(3 + 48);
      const [d] = await Promise.all([page.waitForEvent('download'), page.locator('#downloads a', { hasText: /^aggregate\.json$/ }).click()]);
      const recall = (JSON.parse(readFileSync(await d.path(), 'utf8')) as { recall: { mean: number | null }[] }).recall.map((s) => s.mean ?? 0);
      // a trained model: its visual tokens decode to caption words at some layer (random tiny weights give 0)
      expect(Math.max(...recall)).toBeGreaterThan(0);
    });

    describe('bad input: a message in the page, and the page stays usable', () => {
      const expectMessage = async (inputs: Parameters<typeof runPage>[1], pattern: RegExp) => {
        const { page, errors } = await open();
        const run = await runPage(page, inputs);
        expect(run.state).toBe('error');
        expect(run.message).toMatch(pattern);
        expect(run.message).not.toMatch(/phaselens bug|\n\s+at /); // a message, not a stack trace
        expect(await page.isDisabled('#run')).toBe(false);
        expect(errors).toEqual([]);
      };

      it('a folder that is not a checkpoint', async () => {
        const { coco2 } = await setUp();
        await expectMessage({ model: coco2, data: coco2 }, /^coco2: no config\.json \(not a Hugging Face checkpoint folder\)/);
      });

      it('a missing shard', async () => {
        const { coco2 } = await setUp();
        const dir = join(work, 'sharded');
        await makeTiny({ arch: 'llava', out: dir, seed: 0, dtype: 'f16', shards: 2 });
        const shard = readdirSync(dir).find((f) => /-of-\d+\.safetensors$/.test(f))!;
        rmSync(join(dir, shard));
        await expectMessage({ model: dir, data: coco2 }, new RegExp(`^sharded: shard ${shard.replace(/\./g, '\\.')} is missing`));
      });

      it('a corrupt safetensors header', async () => {
        const { tiny, coco2 } = await setUp();
        const dir = join(work, 'corrupt');
        cpSync(join(tiny, 'llava'), dir, { recursive: true });
        const f = join(dir, 'model.safetensors');
        const bytes = readFileSync(f);
        bytes.write('}}}}', 8); // the JSON header starts at byte 8
        writeFileSync(f, bytes);
        await expectMessage({ model: dir, data: coco2 }, /^corrupt\/model\.safetensors: .*(JSON|header)/);
      });

      it('an image the browser cannot decode fails alone; a pick of only such images is a message', async () => {
        const { page } = await open();
        const { tiny, coco2 } = await setUp();
        const dir = join(work, 'broken');
        mkdirSync(dir);
        writeFileSync(join(dir, 'broken.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(40, 7)]));
        await expectMessage({ model: join(tiny, 'llava'), images: [join(dir, 'broken.png')] }, /No image could be analysed:\nselected files\/broken\.png: .*PNG/);
        // the same pick of the checkpoint: its weights stay on the GPU
        const run = await runPage(page, { images: [join(dir, 'broken.png'), join(coco2, 'val2017', IMAGES[0])] });
        expect(run.state).toBe('done');
        expect(await page.textContent('#timings')).toMatch(/; weights already on the GPU; 1 images analysed .*; 1 failed\.$/);
        expect(JSON.parse(run.files.get('errors.json')!).errors).toEqual([expect.objectContaining({ id: 'broken', image: 'selected files/broken.png' })]);
        expect(run.files.has('000000000802.json')).toBe(true);
      });

      it('bad options', async () => {
        const { tiny, coco2 } = await setUp();
        const { page } = await open();
        await page.click('#options summary');
        await page.fill('#topk', '0');
        await expectMessage({ model: join(tiny, 'llava'), data: coco2 }, /^LogitLens top-k must be a whole number from 1 to 32, got "0"/);
        await page.fill('#topk', '5');
      });

      it('precision f16 on an adapter without shader-f16: one message naming the feature', async () => {
        const { tiny, coco2 } = await setUp();
        const { page } = await open();
        await page.evaluate(() => ((document.getElementById('options') as HTMLDetailsElement).open = true));
        await page.check('#precision-f16');
        try {
          await expectMessage({ model: join(tiny, 'llava'), data: coco2 }, /precision f16 needs the shader-f16 feature, which this GPU \(.*\) does not offer/);
        } finally {
          await page.uncheck('#precision-f16');
        }
        expect(await page.textContent('#adapter')).toMatch(/shader-f16 false/);
      });

      it('a model larger than the adapter can hold: what it needs and what the adapter offers', async () => {
        const { tiny, coco2 } = await setUp();
        const { page } = await open();
        // an adapter whose buffers are limited to 64 KiB (the tiny model's embed_tokens is 3.9 MiB)
        await page.evaluate(() => ((window as unknown as DeviceControlWindow).phaselensDevices.limitBytes = 64 << 10));
        try {
          await expectMessage(
            { model: join(tiny, 'llava'), data: coco2 },
            // the weights split by rows to fit; the first tensor that cannot is RoPE's table, at the first forward
            /^GPU error: tensor rope\.cos_sin.* needs 256\.0 KiB, over this device's storage-binding limit of 64\.0 KiB.*\nadapter google swiftshader.*: maxBufferSize 64\.0 KiB, maxStorageBufferBindingSize 64\.0 KiB/,
          );
        } finally {
          await page.evaluate(() => ((window as unknown as DeviceControlWindow).phaselensDevices.limitBytes = undefined));
        }
      });

      it('a lost device: a message, and the next run opens a new device', async () => {
        const { tiny, coco2 } = await setUp();
        const { page } = await open();
        // a new pick of the checkpoint gets a fresh device, which deviceControl keeps
        expect((await runPage(page, { model: join(tiny, 'llava'), data: coco2 })).state).toBe('done');
        await page.evaluate(() => (window as unknown as DeviceControlWindow).phaselensDevices.last?.destroy());
        await expect.poll(() => page.textContent('#message')).toMatch(/^The GPU device was lost \(destroyed: .*\)\. The next run opens a new one\./);
        expect(await page.getAttribute('body', 'data-state')).toBe('error');
        const again = await runPage(page, { model: join(tiny, 'llava'), data: coco2 });
        expect(again.message).toBe('');
        expect(again.state).toBe('done');
      });
    });
  });
}
