/**
 * One served mode: its own server process, the simulated fleet, a health prober, a warm-up and then a
 * measured window. CPU is measured over the window: the server's utime+stime from /proc and the benchmark
 * process's own process.cpuUsage() (robots and prober together).
 */
import { batchParts, scrapeBatchDurations, type BatchParts } from './batch-parts.js';
import { robotConnections, streamsPerConnection } from './connections.js';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_PROBE_TIMEOUT_MS, HealthProber, summarizeProbes, type HealthSummary } from './health-probe.js';
import type { ServedMode } from './modes.js';
import type { BenchOptions } from './options.js';
import type { Progress } from './progress.js';
import { Recorder, type WindowResult } from './recorder.js';
import { policyCodec } from '../test/support/policy-codec.js';
import { serializedRequests, type ModelLocation, type ViewSide } from './requests.js';
import { Robot } from './robot.js';
import { hostCpuSeconds, startServerProcess } from './server-process.js';
import { round } from './stats.js';
import { classOf, type Workload } from './workload.js';

/** How often the progress line is refreshed; current req/s is measured over the last RATE_WINDOW ticks. */
const PROGRESS_TICK_MS = 250;
const RATE_WINDOW = 4;

export interface ServedRunOptions {
  readonly mode: ServedMode;
  readonly workload: Workload;
  readonly model: ModelLocation;
  readonly modelRepository: string;
  /** The `model` field of requests ("" = the server's default). */
  readonly modelRef: string;
  readonly threads: number;
  readonly extraServerFlags: readonly string[];
  /** Flags for the server's node process (e.g. --cpu-prof). */
  readonly serverNodeArgs: readonly string[];
  readonly warmupS: number;
  readonly durationS: number;
  /** gRPC connections the robots share (robot r uses connection r mod channels); raised to what the robots need. */
  readonly channels: number;
  readonly probeIntervalMs: number;
  readonly unaryDeadlineMs: number;
  readonly viewSide: ViewSide;
  readonly progress: Progress;
  /** Shown in the progress line, e.g. "targets (a) step". */
  readonly label: string;
}

export interface CpuResult {
  readonly windowS: number;
  /** Server process utime+stime over the window. */
  readonly serverSeconds: number;
  /** serverSeconds / windowS: cores the server kept busy. */
  readonly serverCores: number;
  readonly benchUserSeconds: number;
  readonly benchSystemSeconds: number;
  readonly benchCores: number;
  /**
   * Cores busy with anything else on the machine over the window (all busy time from /proc/stat minus the
   * server's and the benchmark's): other tenants of a shared box. Well above 0 means the run was disturbed.
   */
  readonly otherCores: number;
  /** vCPU time the hypervisor gave to other VMs, in cores. */
  readonly stealCores: number;
  /**
   * Cores by server thread over the window: the main (event-loop) thread, then the busiest others in
   * decreasing order (the inference worker first, then decode threads, libuv's pool and V8's helpers).
   */
  readonly serverThreads: { readonly main: number; readonly others: readonly number[] };
}

export interface ServedResult extends WindowResult {
  readonly mode: string;
  readonly description: string;
  readonly serverArgs: readonly string[];
  readonly robots: number;
  /** gRPC connections the robots used (connections.ts: at least robots / the server's streams per connection). */
  readonly channels: number;
  readonly rpc: Workload['rpc'];
  readonly rateHz: number;
  readonly arrivals: Workload['arrivals'] | 'closed-loop';
  readonly classSpec: readonly string[];
  readonly warmupS: number;
  readonly durationS: number;
  readonly cpu: CpuResult;
  readonly health: HealthSummary;
  /** Mean milliseconds per executor call in the window, by stage and part (batch-parts.ts); absent when /metrics did not answer. */
  readonly batchPartsMs?: BatchParts;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Threads shown beyond the main one: the busy ones (inference, decoding, pools) come first. */
const SHOWN_THREADS = 6;

function threadCores(pid: number, before: Map<number, number>, after: Map<number, number>, windowS: number): CpuResult['serverThreads'] {
  const cores = (tid: number) => round(((after.get(tid) ?? 0) - (before.get(tid) ?? 0)) / windowS, 3);
  const others = [...after.keys()]
    .filter((tid) => tid !== pid)
    .map(cores)
    .sort((a, b) => b - a);
  return { main: cores(pid), others: others.slice(0, SHOWN_THREADS) };
}

/** Run options for one served mode, taking everything that is not mode-specific from the bench options. */
export function servedRunOptions(o: BenchOptions, run: Pick<ServedRunOptions, 'mode' | 'workload' | 'model' | 'progress' | 'label'>): ServedRunOptions {
  return {
    ...run,
    modelRepository: o.modelRepository,
    modelRef: o.model,
    threads: o.threads,
    extraServerFlags: o.serverArgs,
    serverNodeArgs: o.serverNodeArgs,
    warmupS: o.warmupS,
    durationS: o.durationS,
    channels: o.channels,
    probeIntervalMs: o.probeIntervalMs,
    unaryDeadlineMs: o.unaryDeadlineMs,
    viewSide: o.viewSide,
  };
}

export async function runServedMode(o: ServedRunOptions): Promise<ServedResult> {
  const { workload } = o;
  const codec = policyCodec();
  const requests = await serializedRequests(o.model.manifest, (r) => classOf(workload, r), workload.robots, codec, o.modelRef, o.viewSide);
  o.progress.note(`[${o.label}] starting server (${o.mode.flags.join(' ')} --threads ${o.threads})`);
  const server = await startServerProcess({
    modelRepository: o.modelRepository,
    threads: o.threads,
    flags: [...o.mode.flags, ...o.extraServerFlags],
    nodeArgs: o.serverNodeArgs,
  });
  const channels = robotConnections(o.channels, workload.robots, streamsPerConnection(o.extraServerFlags));
  if (channels > o.channels) {
    o.progress.note(`[${o.label}] ${workload.robots} robots need ${channels} connections (the server's streams per connection), not ${o.channels}`);
  }
  const clients = Array.from(
    { length: channels },
    () => new grpc.Client(server.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  const recorder = new Recorder(workload.classes, workload.withinMs);
  const robots = requests.map(
    (request, index) =>
      new Robot({
        index,
        classIndex: index % workload.classes.length,
        request,
        client: clients[index % clients.length],
        codec,
        workload,
        sink: recorder,
        unaryDeadlineMs: o.unaryDeadlineMs,
      }),
  );
  let prober: HealthProber | undefined;
  try {
    prober = await HealthProber.start({ address: server.address, intervalMs: o.probeIntervalMs, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS });
    for (const r of robots) r.start();

    const totalS = o.warmupS + o.durationS;
    const started = performance.now();
    const recent: number[] = [];
    let windowStart = 0;
    const show = () => {
      recent.push(recorder.total);
      if (recent.length > RATE_WINDOW + 1) recent.shift();
      const rate = ((recent[recent.length - 1] - recent[0]) * 1000) / (PROGRESS_TICK_MS * Math.max(1, recent.length - 1));
      const elapsed = (performance.now() - started) / 1000;
      const phase = windowStart ? 'measuring' : 'warming up';
      o.progress.update(`[${o.label}] ${phase} ${elapsed.toFixed(1)}/${totalS.toFixed(0)} s, ${recorder.total} done, ${rate.toFixed(0)} req/s`);
    };
    const ticker = setInterval(show, PROGRESS_TICK_MS);
    try {
      await sleep(o.warmupS * 1000);
      windowStart = performance.now();
      const serverCpu0 = server.cpuSeconds();
      const threads0 = server.threadCpuSeconds();
      const benchCpu0 = process.cpuUsage();
      const host0 = hostCpuSeconds();
      const calls0 = await scrapeBatchDurations(server.metricsPort);
      recorder.startWindow();
      prober.begin();
      await sleep(o.durationS * 1000);
      recorder.endWindow();
      const windowS = (performance.now() - windowStart) / 1000;
      const serverSeconds = server.cpuSeconds() - serverCpu0;
      const threads1 = server.threadCpuSeconds();
      const benchCpu = process.cpuUsage(benchCpu0);
      const host1 = hostCpuSeconds();
      const hostSeconds = host1.busy - host0.busy;
      // /metrics renders at most once a second (docs/operations.md): the scrapes' window is the bench's to within a second.
      const calls1 = await scrapeBatchDurations(server.metricsPort);
      const report = await prober.stop();
      prober = undefined;
      const window = recorder.result(windowS);
      o.progress.done();
      return {
        mode: o.mode.name,
        description: o.mode.description,
        serverArgs: server.args,
        robots: workload.robots,
        channels,
        rpc: workload.rpc,
        rateHz: workload.rateHz,
        arrivals: workload.rateHz > 0 ? workload.arrivals : 'closed-loop',
        classSpec: workload.classes.map((c) => c.label),
        warmupS: o.warmupS,
        durationS: o.durationS,
        ...window,
        cpu: {
          windowS: round(windowS),
          serverSeconds: round(serverSeconds, 2),
          serverCores: round(serverSeconds / windowS, 3),
          benchUserSeconds: round(benchCpu.user / 1e6, 2),
          benchSystemSeconds: round(benchCpu.system / 1e6, 2),
          benchCores: round((benchCpu.user + benchCpu.system) / 1e6 / windowS, 3),
          otherCores: round(Math.max(0, hostSeconds - serverSeconds - (benchCpu.user + benchCpu.system) / 1e6) / windowS, 3),
          stealCores: round((host1.steal - host0.steal) / windowS, 3),
          serverThreads: threadCores(server.pid, threads0, threads1, windowS),
        },
        health: summarizeProbes(report, o.probeIntervalMs),
        ...(calls0 && calls1 ? { batchPartsMs: batchParts(calls0, calls1) } : {}),
      };
    } finally {
      clearInterval(ticker);
    }
  } finally {
    for (const r of robots) r.stop();
    await prober?.stop().catch(() => undefined);
    for (const c of clients) c.close();
    await server.stop();
  }
}
