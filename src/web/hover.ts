/**
 * LogitLens for the visual token under the pointer. In a family with patch grids the
 * visual tokens are drawn where they sit on the image: one panel per grid of the metrics'
 * `tokens.grids` (LLaVA-1.5: one, over the part of the image the processor kept — the
 * centre square, or the whole image padded with --pad-to-square; LLaVA-NeXT: the base view,
 * then the tiles' unpadded grid), each cutting its `box` of the original image into rows ×
 * cols patches; LLaVA-NeXT's image_newline tokens have no place and are only counted.
 * Without grids (InstructBLIP's Q-Former query outputs) the tokens are a strip of cells.
 * The table lists, for every hidden-state index l the lens covered, the top-k tokens and
 * probabilities that the run read back (`logit_lens.top_ids / top_probs`, indexed through
 * `logit_lens.layers / positions`; the page's own runs cover everything).
 */
import type { RgbImage } from '../io/image.ts';
import type { PatchGrid } from '../models/vlm.ts';
import { esc } from '../report/svg.ts';

export interface HoverSource {
  /** The image's patch grids (`tokens.grids`, `first` a sequence position); empty when the visual tokens are no patches. */
  grids: readonly PatchGrid[];
  /** Sequence position of the first visual token (`tokens.image[0]`). */
  imageStart: number;
  image: RgbImage;
  /** The visual tokens of the image span. */
  nVisual: number;
  /** Covered hidden-state indices and visual-token positions (logit_lens.layers / positions). */
  layers: number[];
  positions: number[];
  /** [layers.length][positions.length][k] */
  topIds: number[][][];
  topProbs: number[][][];
  /** The vocabulary piece of an id ('' when there is none). */
  piece: (id: number) => string;
}

const SIDE = 336;
const GAP = 8;

/** A cell on the canvas: its rectangle and the visual token (counted from the first) it shows. */
interface Cell {
  x: number;
  y: number;
  w: number;
  h: number;
  token: number;
  where: string;
}

export function showHover(canvas: HTMLCanvasElement, table: HTMLElement, s: HoverSource): void {
  const ctx = canvas.getContext('2d')!;
  const { cells, width, height } = s.grids.length ? gridCells(s) : stripCells(s.nVisual);
  [canvas.width, canvas.height] = [width, height];
  const draw = (active: number) => {
    ctx.clearRect(0, 0, width, height);
    if (s.grids.length) s.grids.forEach((g, i) => drawRegion(ctx, s.image, g.box, i * (SIDE + GAP), 0, SIDE, panelHeight(g)));
    for (const c of cells) {
      if (!s.grids.length) {
        ctx.fillStyle = c.token === active ? '#0072B2' : '#dbe8f3';
        ctx.fillRect(c.x + 1, c.y + 1, c.w - 2, c.h - 2);
        ctx.fillStyle = c.token === active ? '#fff' : '#333';
        ctx.font = '11px sans-serif';
        ctx.fillText(`q${c.token}`, c.x + 4, c.y + c.h / 2 + 4);
      }
      ctx.strokeStyle = c.token === active ? '#D55E00' : 'rgba(255,255,255,0.35)';
      ctx.lineWidth = c.token === active ? 3 : 1;
      ctx.strokeRect(c.x + 0.5, c.y + 0.5, c.w - 1, c.h - 1);
    }
  };
  draw(-1);
  const patches = cells.length;
  const views = s.grids.map((g) => `${viewName(g, s.grids.length)} ${g.rows}×${g.cols}`).join(', ');
  const newlines = s.nVisual - patches;
  table.innerHTML = `<p class="note">${s.grids.length ? `${patches} patch tokens (${esc(views)})${newlines > 0 ? ` and ${newlines} image_newline tokens (no place on the image)` : ''}` : `${s.nVisual} query tokens (no place on the image)`}: hover over one.</p>`;
  canvas.onmousemove = (e) => {
    const r = canvas.getBoundingClientRect();
    const [x, y] = [((e.clientX - r.left) / r.width) * width, ((e.clientY - r.top) / r.height) * height];
    const c = cells.find((c) => x >= c.x && x < c.x + c.w && y >= c.y && y < c.y + c.h);
    if (!c) return;
    draw(c.token);
    table.innerHTML = tokenTable(s, c.token, c.where);
  };
}

/** Square patches: a grid's panel is SIDE wide and as high as its rows need. */
const panelHeight = (g: PatchGrid) => (SIDE * g.rows) / g.cols;

const viewName = (g: PatchGrid, n: number) => (n === 1 ? 'patch' : g.view === 'base' ? 'base view, patch' : `${g.view}, patch`);

/** One panel per grid, side by side; a cell per patch. */
export function gridCells(s: HoverSource): { cells: Cell[]; width: number; height: number } {
  const cells: Cell[] = [];
  s.grids.forEach((g, i) => {
    const [w, h] = [SIDE / g.cols, panelHeight(g) / g.rows];
    for (let r = 0; r < g.rows; r++) {
      for (let c = 0; c < g.cols; c++) {
        cells.push({ x: i * (SIDE + GAP) + c * w, y: r * h, w, h, token: g.first + r * g.stride + c - s.imageStart, where: `${viewName(g, s.grids.length)} row ${r}, column ${c}` });
      }
    }
  });
  return { cells, width: s.grids.length * (SIDE + GAP) - GAP, height: Math.max(...s.grids.map(panelHeight)) };
}

/** Tokens with no place on the image: rows of 8 cells. */
function stripCells(n: number): { cells: Cell[]; width: number; height: number } {
  const cols = 8;
  const w = SIDE / cols;
  const h = Math.min(SIDE / Math.ceil(n / cols), w);
  const cells = Array.from({ length: n }, (_, t) => ({ x: (t % cols) * w, y: Math.floor(t / cols) * h, w, h, token: t, where: `query ${t}` }));
  return { cells, width: SIDE, height: SIDE };
}

/** The part `box` [x0, y0, x1, y1) of the original image (fractional pixels; gray where it reaches past the image) into a w × h panel. */
function drawRegion(ctx: CanvasRenderingContext2D, img: RgbImage, box: readonly number[], x: number, y: number, w: number, h: number): void {
  const rgba = new Uint8ClampedArray(img.width * img.height * 4);
  for (let i = 0; i < img.width * img.height; i++) {
    rgba.set(img.data.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba[4 * i + 3] = 255;
  }
  const src = document.createElement('canvas');
  [src.width, src.height] = [img.width, img.height];
  src.getContext('2d')!.putImageData(new ImageData(rgba, img.width, img.height), 0, 0);
  ctx.fillStyle = '#808080';
  ctx.fillRect(x, y, w, h);
  // the part of the box inside the image, into the matching part of the panel
  const [x0, y0, x1, y1] = box;
  const [sx0, sy0, sx1, sy1] = [Math.max(0, x0), Math.max(0, y0), Math.min(img.width, x1), Math.min(img.height, y1)];
  if (sx1 <= sx0 || sy1 <= sy0) return;
  const [kx, ky] = [w / (x1 - x0), h / (y1 - y0)];
  ctx.drawImage(src, sx0, sy0, sx1 - sx0, sy1 - sy0, x + (sx0 - x0) * kx, y + (sy0 - y0) * ky, (sx1 - sx0) * kx, (sy1 - sy0) * ky);
}

/** Untrained models spread probability over the whole vocabulary: small values keep their digits. */
const prob = (p: number) => (p >= 0.001 ? p.toFixed(3) : p.toExponential(1));

function tokenTable(s: HoverSource, t: number, where: string): string {
  const j = s.positions.indexOf(t);
  if (j < 0 || s.layers.length === 0) return `<p class="note">Visual token ${t} (${esc(where)}): not covered by this run's LogitLens.</p>`;
  const k = s.topIds[0][j].length;
  const head = `<tr><th>l</th>${Array.from({ length: k }, (_, i) => `<th>top ${i + 1}</th>`).join('')}</tr>`;
  const rows = s.topIds.map((layer, i) => {
    const cells = layer[j].map((id, r) => `<td><code>${esc(JSON.stringify(s.piece(id) || `#${id}`))}</code> ${prob(s.topProbs[i][j][r])}</td>`);
    return `<tr><th class="num">${s.layers[i]}</th>${cells.join('')}</tr>`;
  });
  return `<p class="note">Visual token ${t} (${esc(where)}): top-${k} LogitLens tokens and probabilities per hidden-state index l (0 = input embeddings, L = after the final norm).</p><table class="lens">${head}${rows.join('')}</table>`;
}
