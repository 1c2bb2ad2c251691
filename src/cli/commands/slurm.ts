/**
 * `phaselens slurm`: the job scripts of a sharded run on a Slurm cluster (README,
 * "Clusters"), and with --submit their submission. The run's command is checked here, on
 * the login node — options, model folder, data set and shard count — so a typo fails now
 * and not after hours in the queue.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { selectItems } from '../../pipeline/analyze.ts';
import { arrayScript, mergeScript, submitScript, type SlurmRun } from '../../pipeline/slurm.ts';
import { collect, int } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';
import { loadOptions } from '../model-run.ts';
import * as ablate from './ablate.ts';
import * as analyze from './analyze.ts';
import * as knockout from './knockout.ts';
import * as gate from './gate.ts';

const SHARDED = { analyze, knockout, ablate, gate } as const;

interface Options {
  shards: string;
  name?: string;
  jobs?: string;
  gres: string | false;
  partition?: string;
  time?: string;
  mem?: string;
  cpusPerTask?: string;
  account?: string;
  sbatch: string[];
  maxParallel?: string;
  submit: boolean;
}

interface Checked {
  command: string[];
  out: string;
  data: string;
  limit?: number;
  seed: number;
}

/** Parses the run's command with its own options (without running it) and checks it. */
function checkCommand(words: string[]): Checked {
  const [name, ...args] = words;
  const mod = SHARDED[name as keyof typeof SHARDED];
  if (!mod) throw new UserError(`slurm: the command must be one of ${Object.keys(SHARDED).join(', ')}, got ${JSON.stringify(name)} (write it after --, e.g. phaselens slurm --shards 8 -- analyze --model DIR …)`);
  const program = new Command();
  mod.register(program);
  const cmd = program.commands[0];
  const { operands, unknown } = cmd.parseOptions(args);
  if (unknown.length) throw new UserError(`slurm: ${name} has no option ${unknown[0]} (see phaselens ${name} --help)`);
  if (operands.length) throw new UserError(`slurm: ${name} takes no argument ${JSON.stringify(operands[0])}`);
  const o = cmd.opts();
  for (const opt of cmd.options) if (opt.mandatory && o[opt.attributeName()] === undefined) throw new UserError(`slurm: ${name} needs ${opt.flags}`);
  if (o.shard !== undefined || o.shards !== undefined) throw new UserError('slurm: leave --shard/--shards out of the command: each array task takes its own shard from SLURM_ARRAY_TASK_ID');
  if (!existsSync(join(o.model, 'config.json'))) throw new UserError(`slurm: --model ${o.model}: no config.json there (a Hugging Face checkpoint folder is expected)`);
  loadOptions(o); // --dtype / --precision values, checked here rather than on the nodes
  return { command: words, out: resolve(o.out), data: o.data, limit: int('--limit', o.limit, 1), seed: int('--seed', o.seed, 0)! };
}

export function register(program: Command): void {
  program
    .command('slurm')
    .description('write (and with --submit, submit) a Slurm array job running COMMAND in N shards, one task per shard, and a merge job after them')
    .argument('<command...>', 'after --: the analyze, knockout, ablate or gate command to shard, e.g. -- analyze --model DIR --data SPEC --out DIR')
    .requiredOption('--shards <N>', 'number of array tasks (shards)')
    .option('--name <name>', 'job name (default: phaselens-COMMAND)')
    .option('--jobs <dir>', 'folder for the job scripts and logs (default: OUT/slurm)')
    .option('--gres <spec>', 'generic resources of each task', 'gpu:1')
    .option('--no-gres', 'request no GPU (CPU-only nodes, e.g. lavapipe)')
    .option('--partition <p>', 'partition (sbatch --partition)')
    .option('--time <t>', 'time limit of each task (sbatch --time)')
    .option('--mem <m>', 'memory of each task (sbatch --mem)')
    .option('--cpus-per-task <n>', 'CPUs of each task (sbatch --cpus-per-task)')
    .option('--account <a>', 'account to charge (sbatch --account)')
    .option('--sbatch <option>', 'any other sbatch option for both jobs, repeatable, e.g. --sbatch=--qos=long', collect, [])
    .option('--max-parallel <k>', 'at most k tasks at once (--array=1-N%k)')
    .option('--submit', 'submit the jobs with sbatch (otherwise run the submit.sh it writes)', false)
    .action((words: string[], o: Options) => {
      const shards = int('--shards', o.shards, 1)!;
      const run = checkCommand(words);
      const items = selectItems({ data: run.data, limit: run.limit, seed: run.seed }).items.length;
      if (shards > items) throw new UserError(`--shards ${shards}: the run has only ${items} item(s); use at most ${items} shards`);
      const jobs = resolve(o.jobs ?? join(run.out, 'slurm'));
      checkOutputFolder('--out', run.out);
      checkOutputFolder('--jobs', jobs);
      const sbatch = [
        ...(['partition', 'time', 'mem', 'cpusPerTask', 'account'] as const)
          .filter((k) => o[k] !== undefined)
          .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${o[k]}`),
        ...o.sbatch,
      ];
      const r: SlurmRun = {
        name: o.name ?? `phaselens-${words[0]}`,
        shards,
        maxParallel: int('--max-parallel', o.maxParallel, 1),
        phaselens: [process.execPath, resolve(import.meta.dirname, '../phaselens.mjs')],
        command: run.command,
        out: run.out,
        workdir: process.cwd(),
        logs: join(jobs, 'logs'),
        gres: o.gres === false ? null : o.gres,
        sbatch,
      };
      mkdirSync(r.logs, { recursive: true });
      const arrayFile = join(jobs, 'array.sbatch');
      const mergeFile = join(jobs, 'merge.sbatch');
      const submitFile = join(jobs, 'submit.sh');
      writeFileSync(arrayFile, arrayScript(r));
      writeFileSync(mergeFile, mergeScript(r));
      writeFileSync(submitFile, submitScript(arrayFile, mergeFile));
      chmodSync(submitFile, 0o755);
      console.log(`${shards} shards of ${items} items; job scripts in ${jobs}, logs in ${r.logs}`);
      if (!o.submit) {
        console.log(`submit with: bash ${submitFile}`);
        return;
      }
      const array = sbatchSubmit([arrayFile]);
      const merge = sbatchSubmit([`--dependency=afterok:${array}`, mergeFile]);
      console.log(`submitted array job ${array} (${shards} tasks) and merge job ${merge}; watch with: squeue -j ${array},${merge}`);
      console.log(`merged report when done: ${join(r.out, 'report.html')}`);
    });
}

/** Submits a script; returns the job id. */
function sbatchSubmit(args: string[]): string {
  const r = spawnSync('sbatch', ['--parsable', ...args], { encoding: 'utf8' });
  if (r.error) throw new UserError(`sbatch could not be started (${r.error.message}): is this a Slurm login node? The scripts are written; submit them there with submit.sh`);
  if (r.status !== 0) throw new UserError(`sbatch ${args.join(' ')} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout.trim().split(';')[0];
}
