/**
 * The browser path, end to end: test/browser/page.ts (which imports src/gpu/browser.ts
 * and src/ops/linear.ts, the code Node runs) is bundled with esbuild — shaders inlined by
 * src/browser/build.ts — served from 127.0.0.1 on an ephemeral port, and run in Debian's
 * headless Chromium through playwright-core (never a downloaded browser). Outputs come
 * back to Node and are compared with the CPU references in test/reference.
 *
 * The two adapter classes and how Chromium is launched for them: chromium.ts. On both, the
 * test asserts that the adapter and device have no shader-f16, so the packed-f16 weight
 * path ran through unpack2x16float in core WGSL.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleBrowser, readShaderTree } from '../../src/browser/build.ts';
import { browserShaderLoader } from '../../src/gpu/browser.ts';
import { roundF16 } from '../../src/gpu/half.ts';
import { layerNormRef } from '../reference/layernorm.ts';
import { linearRef } from '../reference/matmul.ts';
import { attentionRef } from '../reference/attention.ts';
import { randn, relErr } from '../helpers/gpu.ts';
import { ADAPTERS, launchChromium, requireChromium } from './chromium.ts';
import type { AdapterReport, PageApi } from './page.ts';

// Every wait is bounded: launch, navigation, and each page.evaluate (which Playwright
// would otherwise wait on forever).
const STEP_MS = 30_000;

// Tile = 4×4 outputs per invocation, 32×32 per workgroup: no M or N below is a multiple
// of 32; K = 3 and 257 take the scalar-K path (and odd N·K packs f16 pairs across rows),
// K = 20 the vec4 path.
const SHAPES: [number, number, number][] = [
  [5, 7, 3],
  [33, 65, 20],
  [37, 130, 257],
];

interface Session {
  browser: Browser;
  page: Page;
  report: AdapterReport;
  pageErrors: string[];
}

let server: Server | undefined;
let serving: Promise<string> | undefined;

/**
 * Bundles the page and serves it on 127.0.0.1 (once per file); resolves to its URL. Set-up
 * failures (no Chromium, a bundle error) reject, and every test that needs the page then
 * fails with that message — nothing is skipped.
 */
function serve(): Promise<string> {
  serving ??= (async () => {
    requireChromium();
    const js = await bundleBrowser({ entry: fileURLToPath(new URL('./page.ts', import.meta.url)), sourcemap: true });
    const html = '<!doctype html><meta charset="utf-8"><title>phaselens browser test</title><script type="module" src="/page.js"></script>';
    const srv = createServer((req, res) => {
      const body = req.url === '/' ? html : req.url === '/page.js' ? js : undefined;
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': req.url === '/' ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
    });
    server = srv;
    await new Promise<void>((ok, fail) => {
      srv.once('error', fail);
      srv.listen(0, '127.0.0.1', () => ok());
    });
    return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
  })();
  return serving;
}

afterAll(async () => {
  const srv = server;
  if (!srv) return;
  srv.closeAllConnections();
  await new Promise<void>((ok) => srv.close(() => ok()));
});

/** Calls window.phaselensTest[method](arg) in the page, bounded by STEP_MS; page errors are quoted on failure. */
function call<K extends keyof PageApi>(
  s: Pick<Session, 'page' | 'pageErrors'>, method: K, arg?: Parameters<PageApi[K]>[0],
): Promise<Awaited<ReturnType<PageApi[K]>>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${method}: no answer from the page within ${STEP_MS} ms${quoteErrors(s.pageErrors)}`)), STEP_MS);
  });
  const run = s.page.evaluate(
    ([m, a]) => (window as unknown as { phaselensTest: Record<string, (a: unknown) => unknown> }).phaselensTest[m](a),
    [method, arg ?? null] as const,
  ) as Promise<Awaited<ReturnType<PageApi[K]>>>;
  return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
}

const quoteErrors = (errors: string[]) => (errors.length ? `\npage errors:\n  ${errors.join('\n  ')}` : '');

for (const A of ADAPTERS) {
  describe(`browser: ${A.name}`, () => {
    let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
    let session: Promise<Session> | undefined;

    /** Launches Chromium for this adapter and opens the page (once); every test awaits it. */
    const open = (): Promise<Session> =>
      (session ??= (async () => {
        const url = await serve();
        chromium = await launchChromium(A);
        const browser = chromium.browser;
        const page = await browser.newPage();
        page.setDefaultTimeout(STEP_MS);
        const pageErrors: string[] = [];
        page.on('pageerror', (e) => pageErrors.push(e.message));
        page.on('console', (m) => {
          if (m.type() === 'error') pageErrors.push(m.text());
        });
        await page.goto(url, { timeout: STEP_MS });
        await page.waitForFunction(() => 'phaselensTest' in window, undefined, { timeout: STEP_MS }).catch((e: Error) => {
          throw new Error(`the test page did not load: ${e.message}${quoteErrors(pageErrors)}`);
        });
        const report = await call({ page, pageErrors }, 'open', A.featureLevel ? { featureLevel: A.featureLevel } : {});
        console.log(`[browser ${A.name}] Chromium ${browser.version()}, adapter "${report.adapterName}": ${JSON.stringify(report)}`);
        return { browser, page, report, pageErrors };
      })());

    afterAll(async () => {
      try {
        const s = await session?.catch(() => undefined);
        if (s && !s.page.isClosed()) await call(s, 'close').catch(() => {});
      } finally {
        await chromium?.close();
      }
    }, STEP_MS + 10_000);

    it('adapter has no shader-f16, so packed f16 weights must take the unpack2x16float path', async () => {
      const { report } = await open();
      expect(report.adapterFeatures).not.toContain('shader-f16');
      expect(report.deviceFeatures).not.toContain('shader-f16');
      expect(report.gpuFeatures.f16).toBe(false);
      // The device is in the mode the test asked for.
      expect(report.coreFeaturesAndLimits).toBe(A.featureLevel !== 'compatibility');
    });

    for (const [M, N, K] of SHAPES) {
      for (const wdtype of ['f32', 'f16'] as const) {
        it(`linear ${wdtype} weights M=${M} N=${N} K=${K}`, async () => {
          const x = randn(M * K, 11 * M + K);
          const w = randn(N * K, 17 * N + K, 0.5);
          const y = await call(await open(), 'matmul', { M, N, K, wdtype, x: Array.from(x), w: Array.from(w) });
          expect(y).toHaveLength(M * N);
          // f16: the reference uses the same f16-rounded weights, so only the accumulation
          // order differs and the fp32 tolerance applies to both dtypes.
          const want = linearRef(x, wdtype === 'f16' ? roundF16(w) : w, M, N, K);
          expect(relErr(y, want)).toBeLessThanOrEqual(1e-5);
          if (wdtype === 'f16' && K > 100) {
            // The f16 rounding moves the exact result by far more than the tolerance, so
            // passing above proves the weights really went through f16.
            expect(relErr(linearRef(x, w, M, N, K), want)).toBeGreaterThan(1e-4);
          }
        });
      }
    }

    // The GPU-class variants (src/gpu/adapter-class.ts), forced on this software adapter:
    // the same WGSL through Chromium's Dawn (and, in compatibility mode, through GLSL ES).
    // tiled16 and sgmat need shader-f16 / subgroup matrices, which neither adapter has.
    const gpuMatmul: { kernel: 'gemv' | 'tiled'; shape: [number, number, number] }[] = [
      { kernel: 'gemv', shape: [3, 70, 130] },
      { kernel: 'tiled', shape: [37, 130, 257] },
      { kernel: 'tiled', shape: [130, 66, 36] },
    ];
    for (const { kernel, shape: [M, N, K] } of gpuMatmul) {
      it(`linear, GPU-class variant ${kernel}, f16 weights M=${M} N=${N} K=${K}`, async () => {
        const x = randn(M * K, 3 * M + K);
        const w = randn(N * K, 5 * N + K, 0.5);
        const y = await call(await open(), 'matmul', { M, N, K, wdtype: 'f16', kernel, x: Array.from(x), w: Array.from(w) });
        expect(relErr(y, linearRef(x, roundF16(w), M, N, K))).toBeLessThanOrEqual(1e-5);
      });
    }
    // flash: D = 88 (not a multiple of its vec4 lanes' tiles), causal GQA, Sq off the tiles;
    // decode: one query row over more keys than one chunk. 1e-5: the kernel tests' bound.
    const gpuAttention = [
      { variant: 'flash', Sq: 70, Skv: 70, Hq: 4, Hkv: 2, D: 88, causal: true },
      { variant: 'flash', Sq: 45, Skv: 45, Hq: 2, Hkv: 2, D: 64, causal: false },
      { variant: 'decode', Sq: 1, Skv: 300, Hq: 4, Hkv: 1, D: 128, causal: true },
    ] as const;
    for (const c of gpuAttention) {
      it(`attention, GPU-class variant ${c.variant}: Sq=${c.Sq} Skv=${c.Skv} Hq=${c.Hq} Hkv=${c.Hkv} D=${c.D}${c.causal ? ' causal' : ''}`, async () => {
        const q = randn(c.Sq * c.Hq * c.D, 1 + c.Sq, 1.5);
        const k = randn(c.Skv * c.Hkv * c.D, 2 + c.Skv, 1.5);
        const v = randn(c.Skv * c.Hkv * c.D, 3 + c.Skv);
        const y = await call(await open(), 'attention', { ...c, q: Array.from(q), k: Array.from(k), v: Array.from(v) });
        expect(relErr(y, attentionRef(q, k, v, c, { causal: c.causal }))).toBeLessThanOrEqual(1e-5);
      });
    }

    it('layerNorm f32 and f16 params, rows=3 D=301 (another kernel: workgroup reduction)', async () => {
      const [rows, D, eps] = [3, 301, 1e-5];
      const x = randn(rows * D, 5, 3);
      const weight = randn(D, 6, 1.5);
      const bias = randn(D, 7, 0.5);
      for (const wdtype of ['f32', 'f16'] as const) {
        const y = await call(await open(), 'layerNorm', { rows, D, wdtype, eps, x: Array.from(x), weight: Array.from(weight), bias: Array.from(bias) });
        const r = (a: Float32Array) => (wdtype === 'f16' ? roundF16(a) : a);
        expect(relErr(y, layerNormRef(x, rows, D, r(weight), r(bias), eps))).toBeLessThanOrEqual(1e-5);
      }
    });

    if (A.featureLevel === undefined) {
      it('createBrowserGpu explains a missing navigator.gpu, a missing adapter, missing shaders', async () => {
        const e = await call(await open(), 'errors');
        expect(e.noNavigatorGpu).toMatch(/^UserError: .*navigator\.gpu is missing.*--enable-unsafe-webgpu/);
        expect(e.noAdapter).toMatch(/^UserError: navigator\.gpu\.requestAdapter\(.*\) returned no adapter.*chrome:\/\/gpu/);
        expect(e.noShaders).toMatch(/^UserError: .*no WGSL shaders were bundled.*shaderMapPlugin/);
      });
    }
  });
}

describe('bundled shader map (Node side, no browser)', () => {
  it('keys every shaders/**.wgsl by its path under shaders/, as #include expects', () => {
    const map = readShaderTree();
    const file = (p: string) => readFileSync(new URL(`../../shaders/${p}`, import.meta.url), 'utf8');
    for (const p of ['matmul.wgsl', 'layernorm.wgsl', 'lib/activations.wgsl', 'lib/weights.wgsl']) expect(map[p]).toBe(file(p));
    expect(Object.keys(map).every((k) => k.endsWith('.wgsl') && !k.startsWith('/') && !k.includes('\\'))).toBe(true);
    const load = browserShaderLoader(map);
    expect(load('lib/activations.wgsl')).toBe(map['lib/activations.wgsl']);
    expect(() => load('lib/nope.wgsl')).toThrow(/shader lib\/nope\.wgsl is not in the bundled shader map .*matmul\.wgsl/);
  });
});
