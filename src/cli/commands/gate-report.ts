/** `phaselens gate-report`: finished gate (and knockout / patch) runs of several models side by side (README, "gate-report"). */
import type { Command } from 'commander';
import { gateReport, parseRunSpecs } from '../../pipeline/gate-report.ts';
import { collect } from '../options.ts';
import { checkOutputFolder } from '../output-paths.ts';

interface Options {
  run: string[];
  knockout?: string[];
  patch?: string[];
  out: string;
}

export function register(program: Command): void {
  program
    .command('gate-report')
    .description('the narrow-gate study\'s report (arXiv 2412.06646) with several models side by side: separation, attention share by position, neighbourhood overlap, ablation, steering — from finished runs, nothing recomputed')
    .requiredOption('--run <NAME=DIR>', 'a finished `gate` output folder and the name of its column (repeat: two or more)', collect)
    .option('--knockout <NAME=DIR>', 'a finished `knockout --layers …|--from-last` folder of the same model as --run NAME (repeatable): the ablation table', collect)
    .option('--patch <NAME=DIR>', 'a finished `patch --data` folder of the same model as --run NAME (repeatable, e.g. --every 4 and --from-layer-on): steering success', collect)
    .requiredOption('--out <dir>', 'folder for gate-report.html, gate-report.json and figures/')
    .action((o: Options) => {
      checkOutputFolder('--out', o.out);
      const specs = parseRunSpecs(o.run, o.knockout, o.patch);
      const r = gateReport(specs, o.out);
      console.log(`${specs.length} runs side by side; numbers: ${r.json}`);
      console.log(`report: ${r.report}`);
    });
}
