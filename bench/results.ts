/**
 * How every benchmark hands over its result: the JSON goes to a file, and stdout gets a few lines for a person
 * (what ran, the key numbers, the verdict where the benchmark has one, and where the JSON went). A result carries
 * one metadata block (`meta`: benchmark, commit, machine, cores, device, command, date, node) so that any kept
 * file says what was measured where. `--out <file>` writes anywhere; `--save` keeps the run in
 * bench/results/<benchmark>/<date>-<commit>-<machine>.json, with -run<N> when that day, commit and machine already
 * have a result (results.test.ts holds the folder to this shape); with neither, the JSON goes to the git-ignored
 * bench/out/<benchmark>-<date>.json. `--json` prints the JSON on stdout instead, for a script that reads it
 * there (the summary then goes to stderr).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEFAULT_SERVE_OPTIONS } from '../src/config/index.js';

/** bench/results, from bench/ (tsx, vitest) or dist/bench (the build). */
export const RESULTS_DIR = path.join(repositoryRoot(), 'bench', 'results');

/** Where a run's JSON goes when neither --out nor --save says (git-ignored). */
export const OUT_DIR = path.join(repositoryRoot(), 'bench', 'out');

/** The machine label in file names and in `meta`; DUST_BENCH_MACHINE names it (e.g. `h200`), else `<cores>core`. */
export const MACHINE_ENV = 'DUST_BENCH_MACHINE';

export interface ResultMeta {
  /** The folder under bench/results. */
  readonly benchmark: string;
  /** Short commit of the checkout that was built; null outside a git checkout. */
  readonly commit: string | null;
  readonly machine: string;
  readonly cores: number;
  /** The server's execution provider (its --device flag, else DUST_DEVICE, else the default). */
  readonly device: string;
  readonly command: string;
  /** When the run started (ISO 8601). */
  readonly date: string;
  readonly node: string;
}

export interface ResultTarget {
  /** Write the JSON to this file. */
  readonly out?: string;
  /** Keep the result in bench/results/<benchmark>/. */
  readonly save?: boolean;
  /** Print the JSON on stdout (the summary goes to stderr); no default file. */
  readonly json?: boolean;
}

/** The flags of ResultTarget, the same on every benchmark. */
export function addResultOptions(command: Command): Command {
  return command
    .option('--out <file>', 'write the JSON result to this file (default: bench/out/<benchmark>-<date>.json)')
    .option('--save', 'keep the result in bench/results/<benchmark>/ (runs BENCHMARKS.md cites; development runs use --out)')
    .option('--json', 'print the JSON result on stdout instead of the summary (the summary goes to stderr)');
}

function repositoryRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'bench', 'results'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repositoryRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** The device the server runs on, from the arguments it was started with. */
export function deviceOf(serverArgs: readonly string[]): string {
  return serverFlag(serverArgs, 'device') ?? process.env.DUST_DEVICE ?? DEFAULT_SERVE_OPTIONS.device;
}

/** The value of `--name v` or `--name=v` among server flags (the last one wins, as on the server's command line). */
export function serverFlag(serverArgs: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < serverArgs.length; i++) {
    const a = serverArgs[i];
    if (a === `--${name}` && i + 1 < serverArgs.length) value = serverArgs[i + 1];
    else if (a.startsWith(`--${name}=`)) value = a.slice(name.length + 3);
  }
  return value;
}

export interface MetaInit {
  /** The flags the server was started with (its --device among them). */
  readonly serverArgs?: readonly string[];
  /** When the run started; now by default. */
  readonly startedAt?: Date;
}

/** The metadata block of a run of this process. */
export function resultMeta(benchmark: string, init: MetaInit = {}): ResultMeta {
  const cores = os.availableParallelism();
  const script = process.argv[1] ? path.relative(process.cwd(), process.argv[1]) : '';
  return {
    benchmark,
    commit: gitCommit(),
    machine: process.env[MACHINE_ENV] ?? `${cores}core`,
    cores,
    device: deviceOf(init.serverArgs ?? []),
    command: ['node', script, ...process.argv.slice(2)].join(' '),
    date: (init.startedAt ?? new Date()).toISOString(),
    node: process.version,
  };
}

/** `<date>-<commit>-<machine>.json` in the benchmark's folder, or `-run<N>` after it when that name is taken. */
export function savedResultPath(meta: ResultMeta, dir = RESULTS_DIR): string {
  const folder = path.join(dir, meta.benchmark);
  const stem = `${meta.date.slice(0, 10)}-${meta.commit ?? 'unknown'}-${meta.machine}`;
  const taken = existsSync(folder) ? readdirSync(folder).filter((f) => f === `${stem}.json` || new RegExp(`^${stem}-run\\d+\\.json$`).test(f)) : [];
  return path.join(folder, taken.length === 0 ? `${stem}.json` : `${stem}-run${taken.length + 1}.json`);
}

/** bench/out/<benchmark>-<date>.json, the date in a form that is a file name everywhere. */
export function defaultResultPath(meta: ResultMeta, dir = OUT_DIR): string {
  return path.join(dir, `${meta.benchmark}-${meta.date.replace(/[:.]/g, '-')}.json`);
}

/** The human summary: a heading, the benchmark's own lines, and where the JSON went. */
export function summaryText(meta: ResultMeta, lines: readonly string[], written: readonly string[]): string {
  // Relative to the working directory inside it (bench/out/...), absolute outside it (/tmp/...).
  const shown = (f: string) => {
    if (f === 'stdout') return f;
    const relative = path.relative(process.cwd(), path.resolve(f));
    return relative.startsWith('..') || path.isAbsolute(relative) ? path.resolve(f) : relative;
  };
  const where = written.length > 0 ? written.map(shown).join(', ') : 'stdout';
  const heading = `${meta.benchmark}: ${meta.machine}, ${meta.device}, ${meta.commit ? `commit ${meta.commit}` : 'no commit'}`;
  return [heading, ...lines.map((l) => `  ${l}`), `JSON: ${where}`].map((l) => `${l}\n`).join('');
}

/**
 * Writes the result with its metadata block first to `--out`, with `--save` into bench/results, or with neither
 * (and no `--json`) to bench/out; prints the summary lines on stdout, or with `--json` the JSON on stdout and the
 * summary on stderr. Returns the JSON text.
 */
export function writeResult(meta: ResultMeta, result: object, target: ResultTarget = {}, summary: readonly string[] = []): string {
  const json = `${JSON.stringify({ meta, ...result }, null, 2)}\n`;
  const files = [
    ...(target.out ? [target.out] : []),
    ...(target.save ? [savedResultPath(meta)] : []),
    ...(!target.out && !target.save && !target.json ? [defaultResultPath(meta)] : []),
  ];
  for (const file of files) {
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeFileSync(file, json);
  }
  const text = summaryText(meta, summary, target.json ? [...files, 'stdout'] : files);
  if (target.json) {
    process.stdout.write(json);
    process.stderr.write(text);
  } else {
    process.stdout.write(text);
  }
  return json;
}
