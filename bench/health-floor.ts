#!/usr/bin/env node
/**
 * `npm run bench:health-floor`: what a health check costs on this host before dust-serve adds anything, to
 * read target 10b (health p99 while saturated) against. The same prober as the fleet bench (its own worker
 * thread and connection, a Check every --interval-ms) checks, for --seconds each:
 *  - a bare grpc-js server with only grpc.health.v1 (health-floor-server.ts), and an idle dust-serve,
 *  - with the cores free, and with CPU hogs (cpu-hog.ts: one core busy, a second at --second-duty, as
 *    inference and the rest take them when saturated) at nice 19 (as dust-serve's worker threads run) and
 *    at nice 0 (as they ran before workerNiceness).
 * Prints JSON: one health summary per server and load. BENCHMARKS.md, "Health floor: what a health check costs here before dust-serve adds anything".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { number } from './cli-args.js';
import { DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_TIMEOUT_MS, HealthProber, summarizeProbes, type HealthSummary } from './health-probe.js';
import { DEFAULT_THREADS } from './options.js';
import { Progress } from './progress.js';
import { isolatedRepository } from './repository.js';
import { findModel } from './requests.js';
import { hostCpuSeconds, runBenchmark, startServerProcess } from './server-process.js';
import { round } from './stats.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { healthFloorSummary } from './summaries.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LOADS = ['none', 'nice 19', 'nice 0'] as const;
type Load = (typeof LOADS)[number];

const program = new Command('bench:health-floor')
  .description('health-check latency of a bare grpc-js server and an idle dust-serve, with free and with busy cores')
  .option('--seconds <s>', 'probing seconds per server and load', number(1), 12)
  .option('--interval-ms <ms>', 'health-check interval', number(1), DEFAULT_PROBE_INTERVAL_MS)
  .option('--second-duty <fraction>', 'busy fraction of the second hog (the first is always busy)', number(0), 0.4)
  .option('--model-repository <dir>', 'model repository the idle dust-serve loads', 'models')
  .option('--quiet', 'no progress line');
addResultOptions(program).parse();

interface Options {
  seconds: number;
  intervalMs: number;
  secondDuty: number;
  modelRepository: string;
  out?: string;
  save?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function startHogs(load: Load, secondDuty: number): ChildProcess[] {
  if (load === 'none') return [];
  const niceness = load === 'nice 19' ? 19 : 0;
  return [1, secondDuty].map((duty) => {
    const child = spawn(process.execPath, [path.join(here, 'cpu-hog.js'), String(duty)], { stdio: 'ignore' });
    if (niceness > 0) os.setPriority(child.pid!, niceness);
    return child;
  });
}

async function startBare(): Promise<{ address: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [path.join(here, 'health-floor-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return {
    address: `127.0.0.1:${chunk.toString().trim()}`,
    stop: async () => {
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

async function probe(address: string, o: Options): Promise<HealthSummary> {
  const prober = await HealthProber.start({ address, intervalMs: o.intervalMs, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS });
  prober.begin();
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  return summarizeProbes(await prober.stop(), o.intervalMs);
}

async function main(): Promise<void> {
  const o = program.opts<Options>();
  const startedAt = new Date();
  const progress = new Progress(o.quiet);
  const model = await findModel(o.modelRepository);
  const repo = isolatedRepository(model);
  const runs: Array<{ server: string; load: Load; busyCores: number; health: HealthSummary }> = [];
  try {
    for (const server of ['bare grpc-js health server', 'idle dust-serve'] as const) {
      const target =
        server === 'idle dust-serve' ? await startServerProcess({ modelRepository: repo.root, threads: DEFAULT_THREADS, flags: [] }) : await startBare();
      try {
        for (const load of LOADS) {
          progress.note(`${server}, hogs: ${load}, ${o.seconds} s`);
          const hogs = startHogs(load, o.secondDuty);
          const before = hostCpuSeconds();
          const t0 = performance.now();
          try {
            const health = await probe(target.address, o);
            const busyCores = round((hostCpuSeconds().busy - before.busy) / ((performance.now() - t0) / 1000), 2);
            runs.push({ server, load, busyCores, health });
          } finally {
            for (const h of hogs) h.kill('SIGKILL');
          }
        }
      } finally {
        await target.stop();
      }
    }
  } finally {
    repo.remove();
  }
  const result = { host: { cpus: os.availableParallelism(), node: process.version }, options: o, runs };
  writeResult(resultMeta('health-floor', { startedAt }), result, o, healthFloorSummary(result));
}

runBenchmark('bench:health-floor', main);
