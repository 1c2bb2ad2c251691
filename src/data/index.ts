/**
 * Data sets for `phaselens analyze` under Node: `--data` parsing, the readers bound to
 * the disk, and `--limit/--seed` sampling. The readers themselves (coco.ts, winoground.ts,
 * folder.ts, vqa.ts) take a DataFs, so the page runs them on picked files.
 */
import { cocoItems } from './coco.ts';
import { folderItems } from './folder.ts';
import { nodeDataFs } from './fs-node.ts';
import { winogroundItems } from './winoground.ts';

export { type DataItem, safeId, SAFE_ID } from './item.ts';
export { type DataSpec, DATA_SPEC_HELP, parseDataSpec, loadData, formatDataSpec } from './spec.ts';
export { CAPTIONS_FILE } from './folder.ts';
export { sampleItems, mulberry32, DEFAULT_SEED } from './sample.ts';

export const loadCoco = (annotationsPath: string, imagesDir: string) => cocoItems(nodeDataFs, annotationsPath, imagesDir);
export const loadWinoground = (examplesPath: string, imagesDir: string) => winogroundItems(nodeDataFs, examplesPath, imagesDir);
export const loadFolder = (folder: string) => folderItems(nodeDataFs, folder);
