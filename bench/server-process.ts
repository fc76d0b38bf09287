/**
 * The real server as a child process: `node dist/src/cli/main.js serve` on a free loopback port, ready once
 * grpc.health.v1 says SERVING (models load and warm up before the port opens), stopped with SIGTERM (SIGKILL
 * if it lingers). Every child is registered so that a failing or interrupted benchmark never leaves one behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { checkHealth } from './health-probe.js';
import { freePort } from '../test/support/ports.js';

/** How long model loading and warm-up may take before the benchmark gives up. */
export const DEFAULT_READY_TIMEOUT_MS = 180_000;
const READY_POLL_MS = 100;
const KILL_AFTER_MS = 5_000;
/** Lines of the server's output kept to explain a failure. */
const OUTPUT_TAIL_LINES = 40;

const live = new Set<ChildProcess>();

/** Last-resort cleanup: synchronous, for process 'exit'. */
export function killAllServers(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/**
 * Runs a benchmark program's main: servers are killed when it fails, is interrupted (SIGINT, SIGTERM) or
 * exits, so none is ever left behind.
 */
export function runBenchmark(name: string, main: () => Promise<void>): void {
  process.on('exit', killAllServers);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${name}: ${signal}, stopping the server\n`);
      killAllServers();
      process.exit(130);
    });
  }
  main().catch((err: Error) => {
    process.stderr.write(`\n${name}: ${err.stack ?? err.message}\n`);
    killAllServers();
    process.exit(1);
  });
}

/** dist/src/cli/main.js, next to this file's compiled location (dist/bench). */
function serverScript(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime in seconds from a /proc stat file (a process's: all its threads; or one thread's). */
function statCpuSeconds(file: string): number {
  const stat = readFileSync(file, 'utf8');
  // The command name (field 2) may contain spaces; fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / ticksPerSecond();
}

/** utime + stime of a process, in seconds, from /proc/<pid>/stat (all its threads, ORT's included). */
export function processCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** Resident set size of a process in MiB, from /proc/<pid>/status; NaN when the line is missing. */
export function processRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return line ? Math.round(Number(line.split(/\s+/)[1]) / 102.4) / 10 : NaN;
}

/**
 * CPU seconds of each thread of a process (thread id -> seconds). Node does not name its threads; the main
 * thread's id is the process id, the inference worker is the busiest of the others.
 */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), statCpuSeconds(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/**
 * CPU seconds of the whole machine from /proc/stat: busy (all processes, all cores) and steal (time the
 * hypervisor gave this VM's vCPUs to someone else).
 */
export function hostCpuSeconds(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // cpu user nice system idle iowait irq softirq steal ...
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const tps = ticksPerSecond();
  return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / tps, steal: (f[7] ?? 0) / tps };
}

export interface ServerProcess {
  readonly address: string;
  /** The server's Prometheus endpoint port (on 127.0.0.1). */
  readonly metricsPort: number;
  readonly pid: number;
  readonly args: readonly string[];
  cpuSeconds(): number;
  threadCpuSeconds(): Map<number, number>;
  /** The server's recent output, to explain a failure. */
  outputTail(): string;
  /** How the process ended, once it has (a crash, when the benchmark did not stop it). */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  readonly modelRepository: string;
  readonly threads: number;
  /** Mode flags and any extra flags, passed after the common ones. */
  readonly flags: readonly string[];
  /** Flags for node itself, before the script (e.g. --cpu-prof to profile the server). */
  readonly nodeArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export async function startServerProcess(opts: StartServerOptions): Promise<ServerProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = [
    ...(opts.nodeArgs ?? []),
    serverScript(),
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--metrics-port',
    String(metricsPort),
    '--model-repository',
    opts.modelRepository,
    '--log-level',
    'warn',
    '--threads',
    String(opts.threads),
    '--shutdown-grace-seconds',
    '1',
    ...opts.flags,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    tail.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );
    if (tail.length > OUTPUT_TAIL_LINES) tail.splice(0, tail.length - OUTPUT_TAIL_LINES);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve();
    }),
  );

  const server: ServerProcess = {
    address,
    metricsPort,
    pid: child.pid!,
    args: args.slice((opts.nodeArgs ?? []).length + 1),
    cpuSeconds: () => processCpuSeconds(child.pid!),
    threadCpuSeconds: () => threadCpuSeconds(child.pid!),
    outputTail: () => tail.join('\n'),
    exitStatus: () => exited,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      await exit;
      clearTimeout(timer);
    },
  };

  // The port opens only after the models are warm; retry the connection quickly rather than with grpc-js's
  // default exponential backoff, which would add seconds to every start.
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': READY_POLL_MS,
    'grpc.max_reconnect_backoff_ms': READY_POLL_MS,
    'grpc.use_local_subchannel_pool': 1,
  });
  const deadline = Date.now() + (opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  try {
    for (;;) {
      if (exited) {
        throw new Error(`the server exited (code ${exited.code}, signal ${exited.signal}) before it was ready:\n${server.outputTail()}`);
      }
      const status = await checkHealth(client, 1000).then(
        (r) => r.status,
        () => 'UNREACHABLE',
      );
      if (status === 'SERVING') break;
      if (Date.now() > deadline)
        throw new Error(`the server was not SERVING within ${opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS} ms (last: ${status}):\n${server.outputTail()}`);
      await new Promise((r) => setTimeout(r, READY_POLL_MS));
    }
  } catch (err) {
    await server.stop();
    throw err;
  } finally {
    client.close();
  }
  return server;
}
