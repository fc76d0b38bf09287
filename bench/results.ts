/**
 * How every benchmark hands over its JSON: printed on stdout, and written where asked. A result carries one
 * metadata block (`meta`: benchmark, commit, machine, cores, device, command, date, node) so that any kept file
 * says what was measured where. `--out <file>` writes anywhere (development runs stay out of the repository);
 * `--save` keeps the run in bench/results/<benchmark>/<date>-<commit>-<machine>.json, with -run<N> when that
 * day, commit and machine already have a result (results.test.ts holds the folder to this shape).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SERVE_OPTIONS } from '../src/config/index.js';

/** bench/results, from bench/ (tsx, vitest) or dist/bench (the build). */
export const RESULTS_DIR = path.join(repositoryRoot(), 'bench', 'results');

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
  /** Also write the JSON to this file. */
  readonly out?: string;
  /** Keep the result in bench/results/<benchmark>/. */
  readonly save?: boolean;
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
  for (let i = 0; i < serverArgs.length; i++) {
    const a = serverArgs[i];
    if (a === '--device' && i + 1 < serverArgs.length) return serverArgs[i + 1];
    if (a.startsWith('--device=')) return a.slice('--device='.length);
  }
  return process.env.DUST_DEVICE ?? DEFAULT_SERVE_OPTIONS.device;
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

/**
 * Prints the result with its metadata block first, and writes it to `--out` and, with `--save`, into
 * bench/results. Returns the JSON text.
 */
export function writeResult(meta: ResultMeta, result: object, target: ResultTarget = {}): string {
  const json = `${JSON.stringify({ meta, ...result }, null, 2)}\n`;
  process.stdout.write(json);
  if (target.out) writeFileSync(target.out, json);
  if (target.save) {
    const file = savedResultPath(meta);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, json);
    process.stderr.write(`result kept in ${path.relative(process.cwd(), file)}\n`);
  }
  return json;
}
