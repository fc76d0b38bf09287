/**
 * `dust-serve experiment report`: one self-contained HTML page per model (docs/experiment-report.md), from the
 * experiment database the server writes. It reads the SQLite file (read-only, beside a running server), since
 * the history over time is kept there and GetExperiment answers totals only; the test's level and mixing sd
 * come from the same options as the server's, so that the page draws the confidence sequence of its decisions.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { envName, flagName, OPTION_TABLE } from '../config/index.js';
import { readStoredExperiments } from '../experiment/index.js';
import { renderReportHtml } from './experiment-report-html.js';
import { reportPage } from './experiment-report-model.js';

export interface ExperimentReportFlags {
  model?: string;
  out: string;
  experimentStore: string;
  experimentDb: string;
  experimentAlpha: number;
  experimentMixtureSd: number;
}

/** Where one model's page goes: `out` itself for one model, else `out` with the model's name before the extension. */
export function reportPath(out: string, model: string, several: boolean): string {
  if (!several) return out;
  const ext = path.extname(out);
  return `${out.slice(0, out.length - ext.length)}-${model.replace(/[^A-Za-z0-9._-]/g, '_')}${ext || '.html'}`;
}

/** Writes the pages; returns the files written. */
export function writeExperimentReports(flags: ExperimentReportFlags, now: () => number = Date.now): string[] {
  if (flags.experimentStore !== 'sqlite') {
    throw new Error(
      `the report reads the SQLite experiment store only; the ${flags.experimentStore} store keeps no history yet (docs/experiment-report.md), so only \`dust-serve experiment show\` reads it`,
    );
  }
  const stored = readStoredExperiments(flags.experimentDb, flags.model);
  if (stored.length === 0) throw new Error(`${flags.experimentDb} has no experiments yet`);
  const settings = { alpha: flags.experimentAlpha, tau: flags.experimentMixtureSd, generatedAt: now() };
  return stored.map((s) => {
    const file = reportPath(flags.out, s.experiment.model, stored.length > 1);
    writeFileSync(file, renderReportHtml(reportPage(s, settings)));
    return file;
  });
}

export function runExperimentReport(flags: ExperimentReportFlags): Promise<void> {
  return Promise.resolve().then(() => {
    for (const file of writeExperimentReports(flags)) process.stdout.write(`${file}\n`);
  });
}

/** An option of the server's table, with its flag, environment variable and default. */
function serverOption(key: 'experimentStore' | 'experimentDb' | 'experimentAlpha' | 'experimentMixtureSd', parse?: (v: string) => number): Option {
  const { arg, help, default: value } = OPTION_TABLE[key];
  const option = new Option(`${flagName(key)} ${arg}`, `${help} (the server's option)`).env(envName(key)).default(value);
  return parse ? option.argParser(parse) : option;
}

function parseNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${v}`);
  return n;
}

export function addReportCommand(experiment: Command, action: (f: ExperimentReportFlags) => Promise<void> = runExperimentReport): Command {
  return experiment
    .command('report')
    .description('write an HTML page per model: success rates over time, the decision with its confidence sequence, latency, N_o, surprise, shadow divergence')
    .option('--model <name>', 'only this model (default: every model with an experiment)')
    .option('--out <file>', 'the HTML file; with several models, one file each named <file>-<model>.html', 'report.html')
    .addOption(serverOption('experimentStore'))
    .addOption(serverOption('experimentDb'))
    .addOption(serverOption('experimentAlpha', parseNumber))
    .addOption(serverOption('experimentMixtureSd', parseNumber))
    .action((flags: ExperimentReportFlags) => action(flags));
}
