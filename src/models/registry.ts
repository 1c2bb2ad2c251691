/**
 * `openModel`: a HF checkpoint folder → the family's VlmFiles, dispatched on config.json's
 * `model_type` (`llava`, `instructblip`). The folder is validated against its config and
 * the tokenizer and processor files are read before any GPU allocation, so every
 * downstream command can check its inputs first. Reads through a DirectorySource only:
 * the same call serves a folder on disk and files picked in a browser.
 */
import { UserError } from '../errors.ts';
import type { DirectorySource } from '../io/byte-source.ts';
import { SUPPORTED_MODEL_TYPES } from '../io/config.ts';
import { missingTokenizerReason, readChatTemplate, readImageProcessorConfig, readQformerTokenizer, readTokenizer } from '../io/model-files.ts';
import { validateCheckpoint } from '../io/validate.ts';
import { instructBlipFiles } from './instructblip.ts';
import { llavaFiles } from './llava.ts';
import type { OpenedCheckpoint } from './open.ts';
import type { VlmFiles } from './vlm.ts';

export async function openModel(dir: DirectorySource): Promise<VlmFiles> {
  const report = await validateCheckpoint(dir);
  try {
    const tokenizer = await readTokenizer(dir);
    const c: OpenedCheckpoint = {
      dir,
      report,
      tokenizer,
      noTokenizer: tokenizer ? '' : await missingTokenizerReason(dir),
      processor: await readImageProcessorConfig(dir),
    };
    const cfg = report.config;
    switch (cfg.model_type) {
      case 'llava':
        return llavaFiles(c, cfg, await readChatTemplate(dir));
      case 'instructblip':
        return instructBlipFiles(c, cfg, await readQformerTokenizer(dir));
      default:
        throw new UserError(`${dir.name}: model_type "${(cfg as { model_type: string }).model_type}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
    }
  } catch (e) {
    await report.checkpoint.close();
    throw e;
  }
}
