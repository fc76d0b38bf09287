#!/usr/bin/env node
/**
 * `npm run bench:abuse`: the long abuse run. A real server process with a tokens file; good robots streaming at
 * a control rate with a robot token; hostile clients sending --requests hostile calls (bench/hostile: random
 * bytes, mutated messages, hostile field values, wrong wire types, streams that turn bad, oversized and
 * malformed floods, stream floods with and without a credential, health Watch floods, /metrics scrape floods,
 * LoadModel of packages that reach outside their folder); a health prober checking every --probe-interval-ms;
 * the server's RSS sampled throughout. Prints JSON: status codes by kind of attack, the good robots' success
 * and latency, health-check latency, RSS over time, and whether the server is still up and serving at the end,
 * with the targets: health p99 < 50 ms, RSS growth <= 256 MB, no error for a good robot.
 */
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { number, words } from './cli-args.js';
import { benchClient, benchTokens } from './bench-tokens.js';
import { DEFAULT_FLOOD_OPTIONS, floodShots, writeHostilePackages } from './hostile/floods.js';
import { HOSTILE_CALL_DEADLINE_MS, HostileTally, hostileShots, nthShot, selectKinds, type Shot } from './hostile/shots.js';
import { checkHealth, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_TIMEOUT_MS, HealthProber, summarizeProbes, type HealthSummary } from './health-probe.js';
import { DEFAULT_THREADS } from './options.js';
import { Progress } from './progress.js';
import { Recorder, type WindowResult } from './recorder.js';
import { isolatedRepository } from './repository.js';
import { policyCodec } from '../test/support/policy-codec.js';
import { findModel, robotRequest, serializedRequests } from './requests.js';
import { Robot, type Completion, type RobotSink } from './robot.js';
import { hostCpuSeconds, processRssMb, runBenchmark, startServerProcess, type ServerProcess } from './server-process.js';
import { round } from './stats.js';
import { requestClasses, type Workload } from './workload.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { abuseSummary } from './summaries.js';

export const DEFAULT_ABUSE_REQUESTS = 10_000;
export const DEFAULT_ATTACKERS = 8;
export const DEFAULT_GOOD_ROBOTS = 8;
/** 8 x 5 Hz = 40 req/s of 4:4, well below what 64 robots get out of dust-tiny on 2 cores (BENCHMARKS.md): room for the attack. */
export const DEFAULT_GOOD_RATE_HZ = 5;
/** Server message limit during the run, and the size of the floods (kept just under it). */
export const DEFAULT_ABUSE_MESSAGE_LIMIT = 1024 * 1024;
export const DEFAULT_RSS_INTERVAL_MS = 500;
/** Health checks must stay answered quickly whatever the attack. */
export const HEALTH_P99_TARGET_MS = 50;
/** What the attacks may cost in memory: the peak RSS during the attack over the RSS when it began. */
export const RSS_GROWTH_TARGET_MB = 256;
const CALL_DEADLINE_MS = HOSTILE_CALL_DEADLINE_MS;
const GOOD_WARMUP_MS = 2000;
export const DEFAULT_BASELINE_S = 5;
const PROGRESS_TICK_MS = 250;

const program = new Command('bench:abuse')
  .description('abuse run: hostile requests and floods against a real dust-serve while good robots and a health prober run')
  .option('--requests <n>', 'hostile calls to send', number(1, true), DEFAULT_ABUSE_REQUESTS)
  .option('--attackers <n>', 'hostile clients sending concurrently, each on its own connection', number(1, true), DEFAULT_ATTACKERS)
  .option('--robots <n>', 'good robots (StreamPredict, 4:4, one connection)', number(0, true), DEFAULT_GOOD_ROBOTS)
  .option('--rate <hz>', 'requests per second per good robot', number(0.1), DEFAULT_GOOD_RATE_HZ)
  .option('--message-limit <bytes>', "the server's --max-message-bytes, and the size of the floods", number(1024, true), DEFAULT_ABUSE_MESSAGE_LIMIT)
  .option('--baseline-s <s>', 'seconds of good robots alone, measured before the attack', number(0.5), DEFAULT_BASELINE_S)
  .option('--kinds <list>', 'only these kinds of hostile calls, comma-separated prefixes, e.g. "attack:,flood:,package:" (default: all)')
  .option('--flood-streams <n>', 'streams each stream flood opens on its connection', number(1, true), DEFAULT_FLOOD_OPTIONS.streams)
  .option('--flood-scrapes <n>', 'GET /metrics each scrape flood sends', number(1, true), DEFAULT_FLOOD_OPTIONS.scrapes)
  .option('--seed <n>', 'seed of the hostile bodies', number(0, true), 7)
  .option('--threads <n>', 'ONNX Runtime intra-op threads of the server', number(1, true), DEFAULT_THREADS)
  .option('--model-repository <dir>', 'model repository the server loads', 'models')
  .option('--server-node-args <flags>', 'flags for the server\'s node process, space-separated, e.g. "--cpu-prof --cpu-prof-dir=prof"', '')
  .option('--probe-interval-ms <ms>', 'health-check interval', number(1, true), DEFAULT_PROBE_INTERVAL_MS)
  .option('--rss-interval-ms <ms>', 'how often the server RSS is sampled', number(10, true), DEFAULT_RSS_INTERVAL_MS)
  .option('--quiet', 'no progress line');

interface Flags {
  requests: number;
  attackers: number;
  robots: number;
  rate: number;
  baselineS: number;
  messageLimit: number;
  kinds?: string;
  floodStreams: number;
  floodScrapes: number;
  seed: number;
  threads: number;
  modelRepository: string;
  serverNodeArgs: string;
  probeIntervalMs: number;
  rssIntervalMs: number;
  out?: string;
  save?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** Forwards the robots' reports to the current window's recorder (none between windows). */
class SinkSwitch implements RobotSink {
  target: RobotSink | undefined;
  completed(c: Completion): void {
    this.target?.completed(c);
  }
  failed(classIndex: number, code: string): void {
    this.target?.failed(classIndex, code);
  }
}

interface MeasuredWindow {
  readonly windowS: number;
  /** As in the fleet bench: otherCores well above 0 means other work on the machine disturbed the window. */
  readonly cpu: { serverCores: number; benchCores: number; otherCores: number; stealCores: number };
  readonly health: HealthSummary;
  readonly good: WindowResult;
}

/** Runs `during` with a fresh health prober and good-robot recorder, and measures both and the CPU. */
async function measure(server: ServerProcess, f: Flags, classes: Workload['classes'], sink: SinkSwitch, during: () => Promise<void>): Promise<MeasuredWindow> {
  const prober = await HealthProber.start({ address: server.address, intervalMs: f.probeIntervalMs, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS });
  const recorder = new Recorder(classes);
  sink.target = recorder;
  const serverCpu0 = server.cpuSeconds();
  const benchCpu0 = process.cpuUsage();
  const host0 = hostCpuSeconds();
  const t0 = performance.now();
  recorder.startWindow();
  prober.begin();
  try {
    await during();
  } finally {
    recorder.endWindow();
    sink.target = undefined;
  }
  const windowS = (performance.now() - t0) / 1000;
  const serverCpu = server.cpuSeconds() - serverCpu0;
  const bench = process.cpuUsage(benchCpu0);
  const benchCpu = (bench.user + bench.system) / 1e6;
  const host1 = hostCpuSeconds();
  const health = summarizeProbes(await prober.stop(), f.probeIntervalMs);
  return {
    windowS: round(windowS, 2),
    cpu: {
      serverCores: round(serverCpu / windowS, 3),
      benchCores: round(benchCpu / windowS, 3),
      otherCores: round(Math.max(0, host1.busy - host0.busy - serverCpu - benchCpu) / windowS, 3),
      stealCores: round((host1.steal - host0.steal) / windowS, 3),
    },
    health,
    good: recorder.result(windowS),
  };
}

/** The attackers: each takes the next shot until --requests are sent; outcomes are tallied by kind. */
class Attack {
  readonly tally = new HostileTally();
  private next = 0;

  constructor(
    private readonly kinds: readonly Shot[][],
    private readonly requests: number,
  ) {}

  get sent(): number {
    return this.tally.sent;
  }

  async run(clients: readonly grpc.Client[]): Promise<void> {
    await Promise.all(clients.map((c) => this.attacker(c)));
  }

  private async attacker(client: grpc.Client): Promise<void> {
    for (let i = this.next++; i < this.requests; i = this.next++) {
      const shot = nthShot(this.kinds, i);
      this.tally.record(shot.kind, await shot.fire(client));
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  addResultOptions(program).parse();
  const f = program.opts<Flags>();
  const progress = new Progress(f.quiet === true);
  const model = await findModel(f.modelRepository);
  const repository = isolatedRepository(model);
  // The server runs as deployed, with a tokens file: each good robot holds its own token, the hostile callers one.
  const tokens = benchTokens(f.robots);
  process.once('exit', () => {
    repository.remove();
    tokens.remove();
  });
  const packages = writeHostilePackages(model.dir, repository.root);
  const codec = policyCodec();
  const m = model.manifest;

  const workload: Workload = { classes: requestClasses('4:4', 0, 64), robots: f.robots, rateHz: f.rate, arrivals: 'fixed', rpc: 'stream' };
  const goodRequests = await serializedRequests(m, () => workload.classes[0], f.robots, codec);
  // Hostile requests vary a good robot's request, one that the good robots never send (another robot id).
  const base = await robotRequest(m, f.robots, workload.classes[0]);

  progress.note(`[abuse] starting server (--max-message-bytes ${f.messageLimit} --threads ${f.threads})`);
  const server = await startServerProcess({
    modelRepository: repository.root,
    threads: f.threads,
    flags: ['--max-message-bytes', String(f.messageLimit), '--tokens-file', tokens.file],
    nodeArgs: words(f.serverNodeArgs),
  });
  const target = { address: server.address, metricsPort: server.metricsPort, robotToken: tokens.attacker, adminToken: tokens.admin };
  const shots = [...hostileShots(base, codec.serialize, m.cameras, f), ...floodShots(target, packages, { streams: f.floodStreams, scrapes: f.floodScrapes })];
  const attack = new Attack(selectKinds(shots, f.kinds), f.requests);
  const goodClient = benchClient(server.address);
  const attackerClients = Array.from({ length: f.attackers }, () => benchClient(server.address, tokens.attacker));
  const sink = new SinkSwitch();
  const robots = goodRequests.map(
    (request, index) =>
      new Robot({ index, classIndex: 0, request, client: goodClient, codec, workload, sink, unaryDeadlineMs: CALL_DEADLINE_MS, token: tokens.robots[index] }),
  );
  const rss: Array<{ s: number; mb: number }> = [];
  const t0 = performance.now();
  const sampleRss = () => rss.push({ s: round((performance.now() - t0) / 1000, 2), mb: processRssMb(server.pid) });
  const rssTimer = setInterval(sampleRss, f.rssIntervalMs);
  const ticker = setInterval(() => progress.update(`[abuse] ${attack.sent}/${f.requests} hostile calls, server RSS ${rss.at(-1)?.mb} MB`), PROGRESS_TICK_MS);
  try {
    sampleRss();
    for (const r of robots) r.start();
    await sleep(GOOD_WARMUP_MS);
    progress.note(`[abuse] baseline: ${f.baselineS} s of good robots alone`);
    const baseline = await measure(server, f, workload.classes, sink, () => sleep(f.baselineS * 1000));
    const attackStartS = round((performance.now() - t0) / 1000, 2);
    const during = await measure(server, f, workload.classes, sink, () => attack.run(attackerClients));
    sampleRss();
    // Still up, and still answering a check on a fresh connection.
    const probeClient = benchClient(server.address);
    const after = await checkHealth(probeClient, DEFAULT_PROBE_TIMEOUT_MS).then(
      (r) => r.status,
      (e: grpc.ServiceError) => `failed: ${grpc.status[e.code]}`,
    );
    probeClient.close();
    progress.done();

    const mbs = rss.map((r) => r.mb);
    const atAttackStart = rss.filter((r) => r.s <= attackStartS).at(-1)?.mb ?? mbs[0];
    const { health } = during;
    const hostile = attack.tally.result(during.windowS);
    const result = {
      benchmark: 'abuse',
      model: `${m.name}@${m.version}`,
      startedAt: new Date().toISOString(),
      options: f,
      serverArgs: server.args,
      goodRobots: { robots: f.robots, rateHz: f.rate, classes: workload.classes.map((c) => c.label) },
      baseline,
      attack: { ...during, hostile },
      rssMb: { start: mbs[0], atAttackStart, max: Math.max(...mbs), end: mbs.at(-1), attackStartS, samples: rss },
      serverAfter: after,
      targets: {
        healthP99Ms: {
          value: health.p99,
          threshold: HEALTH_P99_TARGET_MS,
          pass: health.p99 < HEALTH_P99_TARGET_MS && Object.keys(health.failures).length === 0,
        },
        noUnacceptableStatus: { value: hostile.unacceptable, pass: hostile.unacceptable === 0 },
        rssGrowthMb: {
          value: round(Math.max(...mbs) - atAttackStart, 1),
          threshold: RSS_GROWTH_TARGET_MB,
          pass: Math.max(...mbs) - atAttackStart <= RSS_GROWTH_TARGET_MB,
        },
        goodRobotErrors: { value: during.good.errors, pass: Object.keys(during.good.errors).length === 0 },
        serverServingAfter: { value: after, pass: after === 'SERVING' },
      },
    };
    writeResult(resultMeta('abuse', { serverArgs: server.args }), result, f, abuseSummary(result));
  } finally {
    clearInterval(ticker);
    clearInterval(rssTimer);
    for (const r of robots) r.stop();
    goodClient.close();
    for (const c of attackerClients) c.close();
    await server.stop();
  }
}

runBenchmark('bench:abuse', main);
