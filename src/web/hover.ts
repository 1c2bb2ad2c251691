/**
 * LogitLens for the visual token under the pointer. In a family with a patch grid
 * (LLaVA) the visual tokens are patches on a square grid over the image the processor
 * made (the centre square after resizing, or the whole image padded with
 * --pad-to-square); otherwise (InstructBLIP's Q-Former query outputs) they have no place
 * on the image, so they are drawn as a strip of cells. The table lists, for every hidden-state index l the lens covered, the
 * top-k tokens and probabilities that the run read back (`logit_lens.top_ids / top_probs`,
 * indexed through `logit_lens.layers / positions`; the page's own runs cover everything).
 */
import type { RgbImage } from '../io/image.ts';
import { esc } from '../report/svg.ts';

export interface HoverSource {
  /** The visual tokens are patches on a square grid over the image (the family's `patchGrid` capability). */
  patchGrid: boolean;
  image: RgbImage;
  padToSquare: boolean;
  /** The visual tokens of the image span (cells drawn). */
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

export function showHover(canvas: HTMLCanvasElement, table: HTMLElement, s: HoverSource): void {
  const n = s.nVisual;
  const side = Math.sqrt(n);
  const grid = s.patchGrid && Number.isInteger(side) ? { rows: side, cols: side } : null;
  const ctx = canvas.getContext('2d')!;
  canvas.width = canvas.height = SIDE;
  if (grid) drawImage(ctx, s.image, s.padToSquare);
  else ctx.clearRect(0, 0, SIDE, SIDE);
  const cells = grid ?? { rows: Math.ceil(n / 8), cols: 8 };
  const cw = SIDE / cells.cols;
  const ch = grid ? SIDE / cells.rows : Math.min(SIDE / cells.rows, cw);
  const drawCells = (active: number) => {
    if (grid) drawImage(ctx, s.image, s.padToSquare);
    else ctx.clearRect(0, 0, SIDE, SIDE);
    ctx.lineWidth = 1;
    for (let t = 0; t < n; t++) {
      const [x, y] = [(t % cells.cols) * cw, Math.floor(t / cells.cols) * ch];
      if (!grid) {
        ctx.fillStyle = t === active ? '#0072B2' : '#dbe8f3';
        ctx.fillRect(x + 1, y + 1, cw - 2, ch - 2);
        ctx.fillStyle = t === active ? '#fff' : '#333';
        ctx.font = '11px sans-serif';
        ctx.fillText(`q${t}`, x + 4, y + ch / 2 + 4);
      }
      ctx.strokeStyle = t === active ? '#D55E00' : 'rgba(255,255,255,0.35)';
      ctx.lineWidth = t === active ? 3 : 1;
      ctx.strokeRect(x + 0.5, y + 0.5, cw - 1, ch - 1);
    }
  };
  drawCells(-1);
  table.innerHTML = `<p class="note">${grid ? `${n} patch tokens (${grid.rows}×${grid.cols})` : `${n} query tokens (no place on the image)`}: hover over one.</p>`;
  canvas.onmousemove = (e) => {
    const r = canvas.getBoundingClientRect();
    const [x, y] = [((e.clientX - r.left) / r.width) * SIDE, ((e.clientY - r.top) / r.height) * SIDE];
    const t = Math.floor(y / ch) * cells.cols + Math.floor(x / cw);
    if (x < 0 || y < 0 || Math.floor(x / cw) >= cells.cols || t >= n) return;
    drawCells(t);
    table.innerHTML = tokenTable(s, t, grid ? `patch row ${Math.floor(t / cells.cols)}, column ${t % cells.cols}` : `query ${t}`);
  };
}

/** The image as the processor framed it: the centre square, or the whole image padded to a square. */
function drawImage(ctx: CanvasRenderingContext2D, img: RgbImage, pad: boolean): void {
  const rgba = new Uint8ClampedArray(img.width * img.height * 4);
  for (let i = 0; i < img.width * img.height; i++) {
    rgba.set(img.data.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba[4 * i + 3] = 255;
  }
  const src = document.createElement('canvas');
  [src.width, src.height] = [img.width, img.height];
  src.getContext('2d')!.putImageData(new ImageData(rgba, img.width, img.height), 0, 0);
  const m = pad ? Math.max(img.width, img.height) : Math.min(img.width, img.height);
  ctx.fillStyle = '#808080';
  ctx.fillRect(0, 0, SIDE, SIDE);
  ctx.drawImage(src, (img.width - m) / 2, (img.height - m) / 2, m, m, 0, 0, SIDE, SIDE);
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
