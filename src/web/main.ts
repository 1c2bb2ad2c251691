/**
 * The page (web/index.html): the user picks a checkpoint folder and images or a data set
 * folder, or presses a demo button; the page runs `analyze` on them in this browser's
 * WebGPU and shows the CLI report's figures, the LogitLens tokens of the visual token
 * under the pointer, the kernel profile, and the CLI's output files for download.
 *
 * Every failure ends as a message in the page and the controls stay usable. A new
 * checkpoint gets a fresh device (the old model's buffers go with the old one); the same
 * checkpoint with new images reuses the loaded weights. A lost device is dropped and the
 * next run opens a new one. `body[data-state]` (idle, running, done, error) tells tests
 * and scripts where a run is.
 */
import { UserError } from '../errors.ts';
import { checkSmoothWindow } from '../analysis/phases.ts';
import { GpuError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/context.ts';
import { FAMILIES } from '../models/registry.ts';
import type { Vlm } from '../models/vlm.ts';
import { adapterLine } from '../pipeline/analyze-report.ts';
import type { Figure } from '../report/figures.ts';
import { figureHtml } from '../report/html.ts';
import { esc } from '../report/svg.ts';
import { fetchDemo } from './demo.ts';
import { runDownloads, showDownloads, type Download } from './downloads.ts';
import { showHover } from './hover.ts';
import { pickedData } from './picked-data.ts';
import { pickedDirectory, pickedFromHandle, pickedFromList, type Picked } from './picked.ts';
import { profileHtml } from './profile-table.ts';
import { adapterLimits, analyzeItems, finishPage, loadPicked, openPageGpu, openPicked, type ItemResult, type PageOptions } from './session.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let gpu: Gpu | undefined;
let gpuLevel: string | undefined;
let loaded: { pick: Picked; m: Vlm } | undefined;
let modelPick: Picked | undefined;
let dataPick: Picked | undefined;

function setState(state: 'idle' | 'running' | 'done' | 'error'): void {
  document.body.dataset.state = state;
  for (const b of [$<HTMLButtonElement>('run'), ...Array.from(document.querySelectorAll<HTMLButtonElement>('#demo-buttons button'))]) b.disabled = state === 'running';
}

function progress(text: string, done = 0, total = 1): void {
  $<HTMLProgressElement>('progress').max = total;
  $<HTMLProgressElement>('progress').value = done;
  $('progress-text').textContent = text;
}

function showMessage(text: string | null): void {
  $('message').hidden = text === null;
  $('message').textContent = text ?? '';
}

/**
 * A failure in words: our own errors are messages already (a GPU error with what the
 * adapter offers, since it is often a tensor over its limits); anything else is named as a bug.
 */
function describe(e: unknown, g?: Gpu): string {
  if (e instanceof UserError) return e.message;
  if (e instanceof GpuError) return `GPU error: ${e.message}\n${g ? `${adapterLimits(g)}\n` : ''}The device has been dropped; the next run opens a new one.`;
  const err = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return `Unexpected error (a phaselens bug; please report it): ${err}`;
}

function readOptions(): PageOptions {
  const int = (id: string, min: number, max: number, what: string) => {
    const v = Number($<HTMLInputElement>(id).value);
    if (!Number.isInteger(v) || v < min || v > max) throw new UserError(`${what} must be a whole number from ${min} to ${max}, got "${$<HTMLInputElement>(id).value}"`);
    return v;
  };
  const checked = (id: string) => $<HTMLInputElement>(id).checked;
  return {
    question: $<HTMLInputElement>('question').value,
    chat: checked('chat'),
    dropBos: checked('drop-bos'),
    padToSquare: checked('pad-to-square'),
    precision: checked('precision-f16') ? 'f16' : 'f32',
    topk: int('topk', 1, 32, 'LogitLens top-k'),
    smooth: checkSmoothWindow(int('smooth', 1, 1000, 'the phase smoothing window'), 'the phase smoothing window'),
  };
}

/** The device for the chosen adapter level; a new one when the level changed or the last one was lost. */
async function ensureGpu(): Promise<Gpu> {
  const level = $<HTMLSelectElement>('adapter-level').value as 'core' | 'compatibility';
  if (gpu && gpuLevel === level) return gpu;
  dropGpu();
  const g = await openPageGpu(level === 'core' ? undefined : level);
  [gpu, gpuLevel] = [g, level];
  g.device.lost.then((info) => {
    if (gpu !== g) return; // dropped on purpose
    dropGpu();
    if (document.body.dataset.state !== 'running') {
      showMessage(`The GPU device was lost (${info.reason}: ${info.message}). The next run opens a new one.`);
      setState('error');
    }
  });
  $('adapter').textContent = `${adapterLine(g)}; ${adapterLimits(g)}`;
  return g;
}

function dropGpu(): void {
  const g = gpu;
  [gpu, loaded] = [undefined, undefined];
  g?.destroy();
}

async function run(model: Picked | undefined, data: Picked | undefined): Promise<void> {
  setState('running');
  showMessage(null);
  try {
    if (!model) throw new UserError('Choose a checkpoint folder first (or press a demo button).');
    if (!data) throw new UserError('Choose images or a data set folder first.');
    const opts = readOptions();
    progress('reading the data set…');
    const items = await pickedData(data);
    progress('checking the checkpoint…');
    const { files, analyze } = await openPicked(pickedDirectory(model), opts);
    if (loaded && (loaded.pick !== model || loaded.m.precision !== opts.precision)) dropGpu();
    const g = await ensureGpu().catch(async (e: unknown) => {
      await files.close();
      throw e;
    });
    const t0 = performance.now();
    const reused = loaded?.pick === model && loaded.m.precision === opts.precision;
    let m: Vlm;
    if (loaded && reused) {
      await files.close();
      m = loaded.m;
    } else {
      // a failed load leaves its uploaded tensors behind: the device goes with them
      m = await loadPicked(g, files, opts.precision, (d, t) => progress(`loading weights: ${d}/${t} tensors`, d, t)).catch((e: unknown) => {
        dropGpu();
        throw e;
      });
      loaded = { pick: model, m };
    }
    const t1 = performance.now();
    progress(`analysing 0/${items.items.length} images`, 0, items.items.length);
    const itemMs: number[] = [];
    const { results, failures } = await analyzeItems(g, m, items, analyze, (d, t, r) => {
      itemMs.push(performance.now() - t1 - itemMs.reduce((a, b) => a + b, 0));
      progress(`analysing ${d}/${t} images (${'metrics' in r ? r.item.id : `${r.id} failed`})`, d, t);
    });
    await g.sync();
    const t2 = performance.now();
    const { aggregate, report } = finishPage(g, items, results, failures, opts.smooth);
    showResults(m, results, failures, runDownloads(results, failures, aggregate, report), report.figures);
    const timing = $('timings');
    timing.dataset.loadMs = (t1 - t0).toFixed(0);
    timing.dataset.analyzeMs = (t2 - t1).toFixed(0);
    // per item: the first includes compiling every pipeline
    timing.dataset.itemMs = itemMs.map((x) => x.toFixed(0)).join(',');
    timing.textContent = `${m.name} (${m.family}, weights ${m.weightDtypes.join('/')}, precision ${m.precision}); ${items.spec}; ${reused ? 'weights already on the GPU' : `weights loaded in ${((t1 - t0) / 1000).toFixed(2)} s`}; ${results.length} images analysed in ${((t2 - t1) / 1000).toFixed(2)} s; ${failures.length} failed.`;
    $('profile').innerHTML = await profileHtml(g);
    progress(`done: ${results.length} analysed, ${failures.length} failed`, 1, 1);
    if (failures.length && !results.length) showMessage(`No image could be analysed:\n${failures.map((f) => `${f.image}: ${f.message}`).join('\n')}`);
    setState(results.length ? 'done' : 'error');
  } catch (e) {
    showMessage(describe(e, gpu));
    if (e instanceof GpuError) dropGpu();
    progress('');
    setState('error');
  }
}

function showResults(m: Vlm, results: ItemResult[], failures: { image: string; message: string }[], downloads: Download[], figures: readonly Figure[]): void {
  $('results').hidden = false;
  showDownloads($('downloads'), downloads);
  $('failures').innerHTML = failures.length
    ? `<p><b>${failures.length} failed:</b></p><ul>${failures.map((f) => `<li><code>${esc(f.image)}</code>: ${esc(f.message)}</li>`).join('')}</ul>`
    : '';
  $('figures').innerHTML = figures.map(figureHtml).join('\n');
  const select = $<HTMLSelectElement>('hover-image');
  select.replaceChildren(...results.map((r, i) => new Option(r.item.id, String(i))));
  const piece = (id: number) => (m.tokenizer && id < m.tokenizer.vocabSize ? m.tokenizer.idToToken(id) : '');
  const show = () => {
    const r = results[Number(select.value)];
    if (!r) return;
    const lens = r.metrics.logit_lens as { layers: number[]; positions: number[]; top_ids: number[][][]; top_probs: number[][][] };
    const [s0, s1] = r.metrics.tokens.image;
    showHover($<HTMLCanvasElement>('hover-canvas'), $('hover-table'), {
      grids: r.metrics.tokens.grids ?? [],
      imageStart: s0,
      image: r.image,
      nVisual: s1 - s0,
      layers: lens.layers,
      positions: lens.positions,
      topIds: lens.top_ids,
      topProbs: lens.top_probs,
      piece,
    });
  };
  select.onchange = show;
  show();
}

async function pickModelFolder(): Promise<void> {
  const picker = (window as { showDirectoryPicker?: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker;
  if (!picker) {
    $('model-input').click();
    return;
  }
  try {
    setModel(await pickedFromHandle(await picker()));
  } catch (e) {
    if ((e as Error).name !== 'AbortError') showMessage(describe(e));
  }
}

function setModel(p: Picked): void {
  modelPick = p;
  $('model-name').textContent = `${p.name} (${p.files.size} files)`;
}

function setData(p: Picked): void {
  dataPick = p;
  $('data-name').textContent = `${p.name} (${p.files.size} files)`;
}

async function demo(which: string): Promise<void> {
  setState('running');
  showMessage(null);
  try {
    const { model, data } = await fetchDemo(which, (what, d, t) => progress(`fetching the demo ${what}: ${d}/${t} files`, d, t));
    setModel(model);
    setData(data);
  } catch (e) {
    showMessage(describe(e));
    setState('error');
    return;
  }
  await run(modelPick, dataPick);
}

function init(): void {
  const level = new URLSearchParams(location.search).get('adapter');
  if (level === 'compatibility') $<HTMLSelectElement>('adapter-level').value = level;
  $('pick-model').onclick = () => void pickModelFolder();
  $<HTMLInputElement>('model-input').onchange = (e) => {
    const list = (e.target as HTMLInputElement).files;
    if (list?.length) setModel(pickedFromList(list));
  };
  for (const id of ['images-input', 'data-input']) {
    $<HTMLInputElement>(id).onchange = (e) => {
      const list = (e.target as HTMLInputElement).files;
      if (list?.length) setData(pickedFromList(list));
    };
  }
  $('run').onclick = () => void run(modelPick, dataPick);
  // one demo button per family of the table (button id demo-<family>): its organism where it has one, else its tiny checkpoint
  $('demo-buttons').replaceChildren(
    ...FAMILIES.map((f) => {
      const b = document.createElement('button');
      Object.assign(b, { id: `demo-${f.modelType}`, type: 'button', textContent: `Demo: ${f.title}`, onclick: () => void demo(f.modelType) });
      return b;
    }),
  );
  if (!navigator.gpu) showMessage('This browser exposes no WebGPU (navigator.gpu is missing). Use Chrome or Edge 113+; on Linux start Chrome with --enable-unsafe-webgpu. Over plain http, WebGPU needs http://localhost or http://127.0.0.1.');
  setState('idle');
}

init();
