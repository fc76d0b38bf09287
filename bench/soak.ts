#!/usr/bin/env node
/**
 * `npm run bench:soak -- --minutes 30`: the soak run. Finds the saturation throughput (a closed-loop
 * step-mode fleet, as the fleet bench's step 4:4 run) unless --saturation-rps gives it, then runs a fresh
 * server process for --minutes at --load of it: good robots on StreamPredict with Poisson arrivals, plus
 * hostile calls from bench/hostile (malformed and hostile requests, stream, Watch and scrape floods, hostile
 * packages; the server has a tokens file) at --hostile-share of the good request rate, and a
 * health prober. It samples the server's RSS every --sample-s and summarizes every --bucket-s (latency p50/p99
 * of the good robots, health-check latency and failures, hostile outcomes, RSS, CPU), then writes the JSON with
 * a verdict (soak-verdict.ts: no crash, bounded RSS growth after warm-up, steady p99); exit status 2 when the
 * verdict fails. BENCHMARKS.md, "Soak".
 */
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { number, words } from './cli-args.js';
import { checkHealth, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_TIMEOUT_MS, HealthProber, summarizeProbes, type HealthSummary } from './health-probe.js';
import { benchClient, benchTokens } from './bench-tokens.js';
import { DEFAULT_FLOOD_OPTIONS, floodShots, writeHostilePackages } from './hostile/floods.js';
import { HostileTally, hostileShots, nthShot, selectKinds, type Shot } from './hostile/shots.js';
import { SERVED_MODES } from './modes.js';
import { DEFAULT_THREADS, DEFAULT_UNARY_DEADLINE_MS } from './options.js';
import { Progress } from './progress.js';
import { isolatedRepository } from './repository.js';
import { policyCodec } from '../test/support/policy-codec.js';
import { findModel, IMAGE_SIDE, robotRequest, serializedRequests } from './requests.js';
import { mulberry32 } from '@dust-serve/sim-push';
import { Robot, type Completion, type RobotSink } from './robot.js';
import { runServedMode } from './run-served.js';
import { hostCpuSeconds, processRssMb, runBenchmark, startServerProcess, type ServerProcess } from './server-process.js';
import { soakVerdict, type SoakBounds } from './soak-verdict.js';
import { round, summarize } from './stats.js';
import { classOf, nextGapMs, requestClasses, type Workload } from './workload.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { soakSummary } from './summaries.js';

export const DEFAULT_SOAK_MINUTES = 30;
/** Fraction of the saturation throughput the good robots offer. */
export const DEFAULT_SOAK_LOAD = 0.7;
export const DEFAULT_SOAK_ROBOTS = 32;
/** Hostile calls per good request. */
export const DEFAULT_HOSTILE_SHARE = 0.05;
export const DEFAULT_SOAK_ATTACKERS = 4;
/** Hostile calls in flight at most; an arrival beyond it is counted as skipped (the sender never queues). */
export const DEFAULT_MAX_HOSTILE_INFLIGHT = 32;
/** As bench:abuse: the server's --max-message-bytes during the run, and the size of the floods. */
export const DEFAULT_SOAK_MESSAGE_LIMIT = 1024 * 1024;
export const DEFAULT_SATURATION_S = 15;
export const DEFAULT_SATURATION_ROBOTS = 64;
const SATURATION_WARMUP_S = 3;
export const DEFAULT_SAMPLE_S = 5;
export const DEFAULT_BUCKET_S = 60;
/** Verdict bounds (soak-verdict.ts); each is a flag. */
export const DEFAULT_RSS_SLOPE_WINDOW_MINUTES = 10;
export const DEFAULT_MAX_RSS_SLOPE_MB_PER_HOUR = 50;
export const DEFAULT_RSS_MEDIAN_WINDOW_S = 60;
export const DEFAULT_MAX_RSS_GROWTH_MB = 64;
export const DEFAULT_P99_WINDOW_MINUTES = 10;
export const DEFAULT_MAX_P99_RATIO = 1.25;
export const DEFAULT_P99_SLACK_MS = 5;
/** Warm-up when --warmup-minutes is not given: a sixth of the run, at most 5 minutes. */
const MAX_DEFAULT_WARMUP_MINUTES = 5;
const PROGRESS_TICK_MS = 1000;

const program = new Command('bench:soak')
  .description('soak run: the real dust-serve at a fraction of saturation, with hostile calls, for minutes; RSS, latency and health over time, and a verdict')
  .option('--minutes <n>', 'minutes of load on the soak server (after the saturation run)', number(0.1), DEFAULT_SOAK_MINUTES)
  .option('--warmup-minutes <n>', `minutes the verdict ignores at the start (default: a sixth of --minutes, at most ${MAX_DEFAULT_WARMUP_MINUTES})`, number(0))
  .option('--saturation-rps <n>', 'saturation throughput in req/s; 0 = measure it first', number(0), 0)
  .option('--saturation-s <s>', 'measured seconds of the saturation run', number(1), DEFAULT_SATURATION_S)
  .option('--saturation-robots <n>', 'closed-loop robots of the saturation run', number(1, true), DEFAULT_SATURATION_ROBOTS)
  .option('--load <fraction>', 'good robots offer this fraction of the saturation throughput', number(0.01), DEFAULT_SOAK_LOAD)
  .option('--robots <n>', 'good robots (StreamPredict, Poisson arrivals)', number(1, true), DEFAULT_SOAK_ROBOTS)
  .option('--mix <classes>', 'request classes action_steps:vision_steps of the good robots (and the saturation run)', '4:4')
  .option('--hostile-share <fraction>', 'hostile calls per good request (0 = none)', number(0), DEFAULT_HOSTILE_SHARE)
  .option('--kinds <list>', 'only these kinds of hostile calls, comma-separated prefixes (default: all; see bench:abuse)')
  .option('--flood-streams <n>', 'streams each stream flood opens on its connection', number(1, true), DEFAULT_FLOOD_OPTIONS.streams)
  .option('--flood-scrapes <n>', 'GET /metrics each scrape flood sends', number(1, true), DEFAULT_FLOOD_OPTIONS.scrapes)
  .option('--attackers <n>', 'connections the hostile calls are spread over', number(1, true), DEFAULT_SOAK_ATTACKERS)
  .option('--max-hostile-inflight <n>', 'hostile calls in flight at most; more arrivals are skipped and counted', number(1, true), DEFAULT_MAX_HOSTILE_INFLIGHT)
  .option('--message-limit <bytes>', "the server's --max-message-bytes, and the size of the floods", number(1024, true), DEFAULT_SOAK_MESSAGE_LIMIT)
  .option('--seed <n>', 'seed of the hostile bodies and arrivals', number(0, true), 11)
  .option('--sample-s <s>', 'how often the server RSS is sampled', number(0.1), DEFAULT_SAMPLE_S)
  .option('--bucket-s <s>', 'length of each summarized interval', number(1), DEFAULT_BUCKET_S)
  .option('--rss-slope-window-minutes <n>', 'the RSS slope is fitted over the last n minutes after warm-up', number(0.1), DEFAULT_RSS_SLOPE_WINDOW_MINUTES)
  .option('--max-rss-slope-mb-per-hour <n>', 'bound on that slope', number(0), DEFAULT_MAX_RSS_SLOPE_MB_PER_HOUR)
  .option(
    '--rss-median-window-s <s>',
    'RSS growth compares the medians of the first and last this many seconds after warm-up',
    number(1),
    DEFAULT_RSS_MEDIAN_WINDOW_S,
  )
  .option('--max-rss-growth-mb <n>', 'bound on that growth', number(0), DEFAULT_MAX_RSS_GROWTH_MB)
  .option('--p99-window-minutes <n>', 'p99 of the first and last n minutes after warm-up are compared', number(0.1), DEFAULT_P99_WINDOW_MINUTES)
  .option('--max-p99-ratio <r>', 'last p99 <= r x first p99 + --p99-slack-ms', number(1), DEFAULT_MAX_P99_RATIO)
  .option('--p99-slack-ms <ms>', 'absolute slack of the p99 check', number(0), DEFAULT_P99_SLACK_MS)
  .option('--threads <n>', 'ONNX Runtime intra-op threads of the server', number(1, true), DEFAULT_THREADS)
  .option('--model-repository <dir>', 'model repository the server loads', 'models')
  .option('--server-args <flags>', 'extra flags for the servers, space-separated', '')
  .option('--server-node-args <flags>', "flags for the soak server's node process, space-separated", '')
  .option('--probe-interval-ms <ms>', 'health-check interval', number(1, true), DEFAULT_PROBE_INTERVAL_MS)
  .option('--quiet', 'no progress line');

interface Flags {
  minutes: number;
  warmupMinutes?: number;
  saturationRps: number;
  saturationS: number;
  saturationRobots: number;
  load: number;
  robots: number;
  mix: string;
  hostileShare: number;
  kinds?: string;
  floodStreams: number;
  floodScrapes: number;
  attackers: number;
  maxHostileInflight: number;
  messageLimit: number;
  seed: number;
  sampleS: number;
  bucketS: number;
  rssSlopeWindowMinutes: number;
  maxRssSlopeMbPerHour: number;
  rssMedianWindowS: number;
  maxRssGrowthMb: number;
  p99WindowMinutes: number;
  maxP99Ratio: number;
  p99SlackMs: number;
  threads: number;
  modelRepository: string;
  serverArgs: string;
  serverNodeArgs: string;
  probeIntervalMs: number;
  out?: string;
  save?: boolean;
  json?: boolean;
  quiet?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The good robots' answers and failures, timestamped from the start of the load. */
class GoodLog implements RobotSink {
  readonly answers: Array<{ s: number; ms: number }> = [];
  readonly errors: Record<string, number> = {};
  private bucketErrors: Record<string, number> = {};

  constructor(private readonly t0: number) {}

  completed(c: Completion): void {
    this.answers.push({ s: (performance.now() - this.t0) / 1000, ms: c.latencyMs });
  }

  failed(_classIndex: number, code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    this.bucketErrors[code] = (this.bucketErrors[code] ?? 0) + 1;
  }

  /** Errors since the last call. */
  takeBucketErrors(): Record<string, number> {
    const e = this.bucketErrors;
    this.bucketErrors = {};
    return e;
  }
}

/** Hostile calls at a Poisson rate, never more than maxInflight at once; tallied per bucket and in total. */
class HostileSender {
  readonly total = new HostileTally();
  bucket = new HostileTally();
  skipped = 0;
  private inflight = 0;
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly random: () => number;

  constructor(
    private readonly kinds: readonly Shot[][],
    private readonly clients: readonly grpc.Client[],
    private readonly ratePerS: number,
    private readonly maxInflight: number,
    seed: number,
  ) {
    this.random = mulberry32(seed);
  }

  start(): void {
    if (this.ratePerS <= 0) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** Resolves when no hostile call is in flight any more (or after timeoutMs). */
  async drain(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.inflight > 0 && Date.now() < until) await sleep(20);
  }

  private schedule(): void {
    this.timer = setTimeout(
      () => {
        if (!this.running) return;
        this.fire();
        this.schedule();
      },
      nextGapMs(this.ratePerS, 'poisson', this.random()),
    );
  }

  private fire(): void {
    if (this.inflight >= this.maxInflight) {
      this.skipped++;
      return;
    }
    const i = this.next++;
    const shot = nthShot(this.kinds, i);
    this.inflight++;
    void shot.fire(this.clients[i % this.clients.length]).then((out) => {
      this.inflight--;
      this.total.record(shot.kind, out);
      this.bucket.record(shot.kind, out);
    });
  }
}

interface Bucket {
  readonly fromS: number;
  readonly toS: number;
  readonly good: { answered: number; rps: number; latencyMs: ReturnType<typeof summarize>; errors: Record<string, number> };
  readonly health: HealthSummary;
  readonly hostile: { calls: number; codes: Record<string, number>; shedUnderLoad: number; unacceptable: number; skipped: number };
  readonly rssMb: { min: number; max: number; last: number };
  /** Cores: the server's, and the rest of the machine's (well above 0 = a disturbed interval). */
  readonly cpu: { serverCores: number; otherCores: number };
}

async function measureSaturation(f: Flags, model: Awaited<ReturnType<typeof findModel>>, repository: string, serverFlags: string[], progress: Progress) {
  const workload: Workload = { classes: requestClasses(f.mix, 0, 64), robots: f.saturationRobots, rateHz: 0, arrivals: 'fixed', rpc: 'stream' };
  const run = await runServedMode({
    mode: SERVED_MODES.step,
    workload,
    model,
    modelRepository: repository,
    modelRef: '',
    threads: f.threads,
    extraServerFlags: serverFlags,
    serverNodeArgs: [],
    warmupS: SATURATION_WARMUP_S,
    durationS: f.saturationS,
    channels: 1,
    probeIntervalMs: f.probeIntervalMs,
    unaryDeadlineMs: DEFAULT_UNARY_DEADLINE_MS,
    viewSide: IMAGE_SIDE,
    progress,
    label: 'soak: saturation',
  });
  return {
    measured: true,
    rps: run.throughputRps,
    robots: f.saturationRobots,
    durationS: f.saturationS,
    latencyMs: run.latencyMs,
    errors: run.errors,
    cpu: { serverCores: run.cpu.serverCores, otherCores: run.cpu.otherCores, stealCores: run.cpu.stealCores },
  };
}

async function main(): Promise<void> {
  addResultOptions(program).parse();
  const f = program.opts<Flags>();
  const progress = new Progress(f.quiet === true);
  const model = await findModel(f.modelRepository);
  const repository = isolatedRepository(model);
  process.once('exit', () => repository.remove());
  const m = model.manifest;
  const serverFlags = ['--max-message-bytes', String(f.messageLimit), ...words(f.serverArgs)];

  const saturation =
    f.saturationRps > 0 ? { measured: false, rps: f.saturationRps } : await measureSaturation(f, model, repository.root, serverFlags, progress);
  const goodRps = f.load * saturation.rps;
  const hostileRps = f.hostileShare * goodRps;
  const durationS = f.minutes * 60;
  const warmupS = 60 * (f.warmupMinutes ?? Math.min(MAX_DEFAULT_WARMUP_MINUTES, f.minutes / 6));
  if (warmupS >= durationS) throw new Error(`--warmup-minutes must be shorter than --minutes ${f.minutes}`);
  progress.note(`[soak] saturation ${saturation.rps} req/s; ${f.minutes} min at ${goodRps.toFixed(1)} req/s good + ${hostileRps.toFixed(2)} hostile calls/s`);

  const codec = policyCodec();
  const workload: Workload = { classes: requestClasses(f.mix, 0, 64), robots: f.robots, rateHz: goodRps / f.robots, arrivals: 'poisson', rpc: 'stream' };
  const goodRequests = await serializedRequests(m, (r) => classOf(workload, r), f.robots, codec);
  // Hostile calls vary a request of a robot the good robots are not.
  const base = await robotRequest(m, f.robots, workload.classes[0]);
  // The soak server runs as deployed, with a tokens file: each good robot holds its own token, the hostile callers one.
  const tokens = benchTokens(f.robots);
  process.once('exit', () => tokens.remove());
  const packages = writeHostilePackages(model.dir, repository.root);

  const server: ServerProcess = await startServerProcess({
    modelRepository: repository.root,
    threads: f.threads,
    flags: [...serverFlags, '--tokens-file', tokens.file],
    nodeArgs: words(f.serverNodeArgs),
  });
  const target = { address: server.address, metricsPort: server.metricsPort, robotToken: tokens.attacker, adminToken: tokens.admin };
  const kinds = selectKinds(
    [...hostileShots(base, codec.serialize, m.cameras, f), ...floodShots(target, packages, { streams: f.floodStreams, scrapes: f.floodScrapes })],
    f.kinds,
  );
  const goodClient = benchClient(server.address);
  const attackerClients = Array.from({ length: f.attackers }, () => benchClient(server.address, tokens.attacker));
  const t0 = performance.now();
  const elapsedS = () => (performance.now() - t0) / 1000;
  const good = new GoodLog(t0);
  const robots = goodRequests.map(
    (request, index) =>
      new Robot({
        index,
        classIndex: index % workload.classes.length,
        request,
        client: goodClient,
        codec,
        workload,
        sink: good,
        unaryDeadlineMs: DEFAULT_UNARY_DEADLINE_MS,
        token: tokens.robots[index],
      }),
  );
  const hostile = new HostileSender(kinds, attackerClients, hostileRps, f.maxHostileInflight, f.seed);
  const rss: Array<{ s: number; mb: number }> = [];
  const buckets: Bucket[] = [];
  let crash: { atS: number; code: number | null; signal: string | null; outputTail: string } | undefined;
  let prober: HealthProber | undefined;
  let healthChecks = 0;
  let healthNotServing = 0;
  const healthFailures: Record<string, number> = {};

  const sampleRss = () => {
    const exit = server.exitStatus();
    if (exit) {
      crash ??= { atS: round(elapsedS(), 1), code: exit.code, signal: exit.signal, outputTail: server.outputTail() };
      return;
    }
    try {
      rss.push({ s: round(elapsedS(), 2), mb: processRssMb(server.pid) });
    } catch {
      // The process ended between the check and the read; the next sample records the crash.
    }
  };
  const rssTimer = setInterval(sampleRss, f.sampleS * 1000);
  const ticker = setInterval(() => {
    const last = buckets.at(-1);
    progress.update(
      `[soak] ${(elapsedS() / 60).toFixed(1)}/${f.minutes} min, ${good.answers.length} answered, hostile ${hostile.total.sent}, ` +
        `RSS ${rss.at(-1)?.mb ?? '?'} MB${last ? `, last interval p99 ${last.good.latencyMs.p99} ms, health p99 ${last.health.p99} ms` : ''}`,
    );
  }, PROGRESS_TICK_MS);

  try {
    sampleRss();
    for (const r of robots) r.start();
    hostile.start();
    prober = await HealthProber.start({ address: server.address, intervalMs: f.probeIntervalMs, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS });
    prober.begin();
    let fromS = 0;
    let answeredBefore = 0;
    let skippedBefore = 0;
    let cpu0 = { server: server.cpuSeconds(), host: hostCpuSeconds().busy, bench: process.cpuUsage() };
    while (fromS < durationS && !crash) {
      const toS = Math.min(durationS, fromS + f.bucketS);
      while (elapsedS() < toS && !crash) await sleep(Math.min(250, (toS - elapsedS()) * 1000));
      // The next interval's prober starts before this one's stops, so no interval goes unprobed.
      const more = toS < durationS && !crash;
      const nextProber = more
        ? await HealthProber.start({ address: server.address, intervalMs: f.probeIntervalMs, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS })
        : undefined;
      nextProber?.begin();
      const report = await prober!.stop();
      prober = nextProber;
      const health = summarizeProbes(report, f.probeIntervalMs);
      healthChecks += health.count + Object.values(report.failures).reduce((a, b) => a + b, 0);
      healthNotServing += report.notServing;
      for (const [k, n] of Object.entries(report.failures)) healthFailures[k] = (healthFailures[k] ?? 0) + n;
      const endS = elapsedS();
      const answers = good.answers.slice(answeredBefore);
      answeredBefore = good.answers.length;
      const bucketHostile = hostile.bucket.result(endS - fromS);
      hostile.bucket = new HostileTally();
      const inBucket = rss.filter((r) => r.s >= fromS && r.s <= endS).map((r) => r.mb);
      const alive = !server.exitStatus();
      const cpu1 = { server: alive ? server.cpuSeconds() : cpu0.server, host: hostCpuSeconds().busy, bench: process.cpuUsage() };
      const windowS = endS - fromS;
      const benchS = (cpu1.bench.user + cpu1.bench.system - cpu0.bench.user - cpu0.bench.system) / 1e6;
      buckets.push({
        fromS: round(fromS, 1),
        toS: round(endS, 1),
        good: {
          answered: answers.length,
          rps: round(answers.length / windowS, 1),
          latencyMs: summarize(answers.map((a) => a.ms)),
          errors: good.takeBucketErrors(),
        },
        health,
        hostile: {
          calls: bucketHostile.calls,
          codes: bucketHostile.codes,
          shedUnderLoad: bucketHostile.shedUnderLoad,
          unacceptable: bucketHostile.unacceptable,
          skipped: hostile.skipped - skippedBefore,
        },
        rssMb: { min: Math.min(...inBucket), max: Math.max(...inBucket), last: inBucket.at(-1) ?? NaN },
        cpu: {
          serverCores: round((cpu1.server - cpu0.server) / windowS, 3),
          otherCores: round(Math.max(0, cpu1.host - cpu0.host - (cpu1.server - cpu0.server) - benchS) / windowS, 3),
        },
      });
      cpu0 = cpu1;
      skippedBefore = hostile.skipped;
      // Starting and stopping probers takes a moment: the next interval starts where this one really ended.
      fromS = endS;
    }
    for (const r of robots) r.stop();
    hostile.stop();
    await hostile.drain(DEFAULT_PROBE_TIMEOUT_MS * 15);
    sampleRss();
    const ranS = crash ? crash.atS : elapsedS();

    let servingAfter = 'not checked: the server exited';
    if (!server.exitStatus()) {
      const probeClient = benchClient(server.address);
      servingAfter = await checkHealth(probeClient, DEFAULT_PROBE_TIMEOUT_MS).then(
        (r) => r.status,
        (e: grpc.ServiceError) => `failed: ${grpc.status[e.code]}`,
      );
      probeClient.close();
    }
    progress.done();

    const bounds: SoakBounds = {
      warmupS,
      rssSlopeWindowS: f.rssSlopeWindowMinutes * 60,
      maxRssSlopeMbPerHour: f.maxRssSlopeMbPerHour,
      rssMedianWindowS: f.rssMedianWindowS,
      maxRssGrowthMb: f.maxRssGrowthMb,
      p99WindowS: f.p99WindowMinutes * 60,
      maxP99Ratio: f.maxP99Ratio,
      p99SlackMs: f.p99SlackMs,
    };
    const hostileTotal = hostile.total.result(ranS);
    const verdict = soakVerdict(
      {
        durationS: Math.min(ranS, durationS),
        rss,
        latencies: good.answers,
        goodErrors: good.errors,
        crash,
        servingAfter,
        healthChecks,
        healthFailures,
        healthNotServing,
        hostileUnacceptable: hostileTotal.unacceptable,
      },
      bounds,
    );
    const afterWarmup = good.answers.filter((a) => a.s >= warmupS);
    const mbs = rss.map((r) => r.mb);
    const result = {
      benchmark: 'soak',
      model: `${m.name}@${m.version}`,
      host: { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model, node: process.version },
      startedAt: new Date(Date.now() - ranS * 1000).toISOString(),
      options: f,
      serverArgs: server.args,
      saturation,
      offered: {
        goodRps: round(goodRps, 2),
        perRobotHz: round(workload.rateHz, 3),
        robots: f.robots,
        classes: workload.classes.map((c) => c.label),
        hostileRps: round(hostileRps, 3),
      },
      ranS: round(ranS, 1),
      warmupS: round(warmupS, 1),
      good: {
        answered: good.answers.length,
        errors: good.errors,
        afterWarmup: {
          answered: afterWarmup.length,
          rps: round(afterWarmup.length / Math.max(1e-9, Math.min(ranS, durationS) - warmupS), 2),
          latencyMs: summarize(afterWarmup.map((a) => a.ms)),
        },
      },
      hostile: { ...hostileTotal, skippedAtInflightCap: hostile.skipped },
      health: { checks: healthChecks, failures: healthFailures, notServing: healthNotServing },
      rssMb: { start: mbs[0], atWarmupEnd: rss.filter((r) => r.s <= warmupS).at(-1)?.mb, max: Math.max(...mbs), end: mbs.at(-1), samples: rss },
      intervals: buckets,
      crash,
      servingAfter,
      verdict,
    };
    writeResult(resultMeta('soak', { serverArgs: server.args, startedAt: new Date(result.startedAt) }), result, f, soakSummary(result));
    if (!verdict.pass) process.exitCode = 2;
  } finally {
    await prober?.stop().catch(() => undefined);
    clearInterval(ticker);
    clearInterval(rssTimer);
    for (const r of robots) r.stop();
    hostile.stop();
    goodClient.close();
    for (const c of attackerClients) c.close();
    await server.stop();
  }
}

runBenchmark('bench:soak', main);
