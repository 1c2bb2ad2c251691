/**
 * `npm run web`: builds the page (build.ts) and serves the folder on 127.0.0.1, printing
 * the URL. WebGPU needs a secure context, which http://127.0.0.1 and http://localhost
 * are. Only files inside the folder are served; nothing is uploaded anywhere — the page
 * reads the user's files in the browser.
 *
 *   node src/cli/run-ts.mjs src/web/serve.ts [--port N] [--no-build] [DIR]
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { isMain } from '../cli/standalone.ts';
import { buildWeb, DEFAULT_WEB_OUT } from './build.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.jsonl': 'application/json',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

export interface Served {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves `dir` read-only on 127.0.0.1:`port` (0: any free port). */
export async function serveStatic(dir: string, port = 0): Promise<Served> {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
    let size = -1;
    try {
      if (file.startsWith(root + sep) && statSync(file).isFile()) size = statSync(file).size;
    } catch {
      // missing: 404 below
    }
    if (size < 0) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--port');
  const port = at >= 0 ? Number(args.splice(at, 2)[1]) : 8717;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('phaselens: --port needs a number from 0 to 65535 (0: any free port)');
    process.exit(2);
  }
  const build = !args.includes('--no-build');
  const dir = resolve(args.find((a) => !a.startsWith('--')) ?? DEFAULT_WEB_OUT);
  if (build) await buildWeb(dir);
  const s = await serveStatic(dir, port).catch((e: NodeJS.ErrnoException) => {
    console.error(e.code === 'EADDRINUSE' ? `phaselens: port ${port} on 127.0.0.1 is in use; pick another with \`npm run web -- --port N\`` : `phaselens: cannot serve on port ${port}: ${e.message}`);
    process.exit(2);
  });
  console.log(`phaselens page: ${s.url}  (serving ${dir}; Ctrl-C stops)`);
}
