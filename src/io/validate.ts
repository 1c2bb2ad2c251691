/**
 * Checks a checkpoint folder against its own config.json before anything is loaded:
 * the config parses and is in range, the tensor names fit one of the family's layouts
 * (src/io/layouts.ts), every expected tensor is present with the shape the config
 * implies, nothing unexpected is there, and every weight has a dtype we
 * can upload. What a family expects comes from the caller (`kindOf`: the family table,
 * models/registry.ts, whose `checkCheckpoint` / `validateCheckpoint` the loaders and
 * `phaselens inspect` call).
 */
import { UserError } from '../errors.ts';
import type { DirectorySource } from './byte-source.ts';
import { Checkpoint } from './checkpoint.ts';
import type { ModelConfig } from './config.ts';
import { bestLayoutMatch, describeMatch, type ExpectedTensor, type TensorMatch } from './expected-tensors.ts';
import type { Layout } from './layouts.ts';

const UPLOADABLE = new Set(['F32', 'F16', 'BF16']);

/** What a config.json says a folder must hold (the family table parses it). */
export interface CheckpointKind {
  config: ModelConfig;
  expected: ExpectedTensor[];
  /** The family's key layouts, hub first. */
  layouts: readonly Layout[];
  /** The config in a few lines, for `inspect`. */
  summary: string[];
}

export interface CheckpointReport {
  config: ModelConfig;
  summary: string[];
  /** Open; the caller closes it. */
  checkpoint: Checkpoint;
  expected: ExpectedTensor[];
  /** Includes the layout the names were read in. */
  match: TensorMatch;
  /** Why the checkpoint cannot be used; empty when it can. */
  problems: string[];
}

/** Reads config.json and the safetensors headers and compares them; never throws for a mismatch. */
export async function checkCheckpointWith(dir: DirectorySource, kindOf: (configText: string, file: string) => CheckpointKind): Promise<CheckpointReport> {
  const text = await dir.readText('config.json');
  if (text === undefined) throw new UserError(`${dir.name}: no config.json (not a Hugging Face checkpoint folder)`);
  const { config, expected, layouts, summary } = kindOf(text, `${dir.name}/config.json`);
  const checkpoint = await Checkpoint.open(dir);
  const match = bestLayoutMatch(expected, layouts, checkpoint.tensors);
  checkpoint.useNames(match.found);
  const problems = describeMatch(match, expected.length, checkpoint.tensors.size);
  const badDtype = [...match.found.values()].map((n) => checkpoint.info(n)).filter((t) => !UPLOADABLE.has(t.dtype));
  if (badDtype.length) {
    const first = badDtype.slice(0, 5).map((t) => `${t.name} (${t.dtype})`).join(', ');
    problems.push(`${badDtype.length} weights have a dtype other than F32/F16/BF16: ${first}${badDtype.length > 5 ? ', …' : ''}`);
  }
  return { config, summary, checkpoint, expected, match, problems };
}

/**
 * The gate before loading: returns the report (checkpoint open) when the folder is
 * usable, else closes it and throws a UserError with every problem found.
 */
export async function validateCheckpointWith(dir: DirectorySource, kindOf: (configText: string, file: string) => CheckpointKind): Promise<CheckpointReport> {
  const report = await checkCheckpointWith(dir, kindOf);
  if (report.problems.length) {
    await report.checkpoint.close();
    throw new UserError(`${dir.name}: checkpoint does not match its config.json (${report.config.model_type}):\n  ${report.problems.join('\n  ')}`);
  }
  return report;
}
