/** Data sets for `phaselens analyze`: `--data` parsing, the three loaders, and `--limit/--seed` sampling. */
export { type DataItem, safeId, SAFE_ID } from './item.ts';
export { type DataSpec, DATA_SPEC_HELP, parseDataSpec, loadData, formatDataSpec } from './spec.ts';
export { loadCoco } from './coco.ts';
export { loadWinoground } from './winoground.ts';
export { loadFolder, CAPTIONS_FILE } from './folder.ts';
export { sampleItems, mulberry32, DEFAULT_SEED } from './sample.ts';
