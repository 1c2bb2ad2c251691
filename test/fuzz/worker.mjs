// Entry of the fuzzer's worker threads: loads the TypeScript through tsx, as src/cli/phaselens.mjs does.
import { register } from 'tsx/esm/api';

register();
await import('./fuzz.ts');
