/**
 * Checks a checkpoint folder against its own config.json before anything is loaded:
 * the config parses and is in range, the tensor names fit one of the family's layouts
 * (src/io/layouts.ts), every expected tensor is present with the shape the config
 * implies, nothing unexpected is there, and every weight has a dtype we
 * can upload. Model loaders call `validateCheckpoint`; `phaselens inspect` prints the
 * same report.
 */
import { UserError } from '../errors.ts';
import type { DirectorySource } from './byte-source.ts';
import { Checkpoint } from './checkpoint.ts';
import { parseConfig, type ModelConfig } from './config.ts';
import { describeMatch, expectedTensors, matchCheckpoint, type ExpectedTensor, type TensorMatch } from './expected-tensors.ts';

const UPLOADABLE = new Set(['F32', 'F16', 'BF16']);

export interface CheckpointReport {
  config: ModelConfig;
  /** Open; the caller closes it. */
  checkpoint: Checkpoint;
  expected: ExpectedTensor[];
  /** Includes the layout the names were read in. */
  match: TensorMatch;
  /** Why the checkpoint cannot be used; empty when it can. */
  problems: string[];
}

/** Reads config.json and the safetensors headers and compares them; never throws for a mismatch. */
export async function checkCheckpoint(dir: DirectorySource): Promise<CheckpointReport> {
  const text = await dir.readText('config.json');
  if (text === undefined) throw new UserError(`${dir.name}: no config.json (not a Hugging Face checkpoint folder)`);
  const config = parseConfig(text, `${dir.name}/config.json`);
  const checkpoint = await Checkpoint.open(dir);
  const expected = expectedTensors(config);
  const match = matchCheckpoint(config, checkpoint.tensors);
  checkpoint.useNames(match.found);
  const problems = describeMatch(match, expected.length, checkpoint.tensors.size);
  const badDtype = [...match.found.values()].map((n) => checkpoint.info(n)).filter((t) => !UPLOADABLE.has(t.dtype));
  if (badDtype.length) {
    const first = badDtype.slice(0, 5).map((t) => `${t.name} (${t.dtype})`).join(', ');
    problems.push(`${badDtype.length} weights have a dtype other than F32/F16/BF16: ${first}${badDtype.length > 5 ? ', …' : ''}`);
  }
  return { config, checkpoint, expected, match, problems };
}

/**
 * The gate before loading: returns the report (checkpoint open) when the folder is
 * usable, else closes it and throws a UserError with every problem found.
 */
export async function validateCheckpoint(dir: DirectorySource): Promise<CheckpointReport> {
  const report = await checkCheckpoint(dir);
  if (report.problems.length) {
    await report.checkpoint.close();
    throw new UserError(`${dir.name}: checkpoint does not match its config.json (${report.config.model_type}):\n  ${report.problems.join('\n  ')}`);
  }
  return report;
}
