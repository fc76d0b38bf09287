#!/usr/bin/env node
/**
 * `npm run bench:stream-flood`: stream floods against a real dust-serve process on loopback, from a raw HTTP/2
 * client that ignores the server's stream cap (test/support/hostile/raw-h2.ts), with a health prober running. Prints
 * JSON. Two parts:
 *
 * - memory per open call: the caps raised out of the way, --per-call-streams idle streams of each kind are
 *   opened (StreamPredict with a token, HEADERS only; health Watch), and the server's RSS growth is divided by
 *   the streams open;
 * - the attacks, against the server's default caps: HEADERS-only Predict streams without a token on one
 *   connection; Watch streams on one connection; idle StreamPredict streams with a token on 4 connections.
 *   Each reports the server's RSS growth and the health p99 during the attack, against the targets
 *   (<= 256 MB, < 50 ms). Every loop is bounded: the program stops by itself.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { number, words } from './cli-args.js';
import { checkHealth, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_TIMEOUT_MS, HealthProber, summarizeProbes } from './health-probe.js';
import { HEALTH_WATCH_PATH, POLICY_PATHS } from '../test/support/hostile/raw-calls.js';
import { grpcHeaders, RawH2Connection } from '../test/support/hostile/raw-h2.js';
import { DEFAULT_THREADS } from './options.js';
import { isolatedRepository } from './repository.js';
import { findModel } from './requests.js';
import { processRssMb, runBenchmark, startServerProcess, type ServerProcess } from './server-process.js';
import { round } from './stats.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { streamFloodSummary } from './summaries.js';

const TOKEN = 'stream-flood-bench-token-6d1f0c';
/** An empty HealthCheckRequest: service "". */
const WATCH_REQUEST = Buffer.alloc(0);
export const RSS_GROWTH_TARGET_MB = 256;
export const HEALTH_P99_TARGET_MS = 50;
/** Time the server gets after a flood's last frame was read before its RSS is read (GC, late writes). */
const SETTLE_MS = 1000;
/** Caps far above any flood here: the per-call measurement must not be refused. */
const UNCAPPED = [
  '--max-concurrent-streams',
  '10000000',
  '--max-open-calls',
  '10000000',
  '--max-watch-streams',
  '10000000',
  '--max-watch-streams-per-connection',
  '10000000',
];

const program = new Command('bench:stream-flood')
  .description('stream floods (with and without a credential, health Watch) against a real dust-serve; memory per open call')
  .option('--streams <n>', 'streams each attack opens per connection', number(1, true), 100_000)
  .option('--per-call-streams <n>', 'idle streams opened to measure memory per open call (0 = skip)', number(0, true), 20_000)
  .option(
    '--reconnect-s <s>',
    'a persistent attacker: reconnect whenever the server closes the connection, for this many seconds (0 = one connection each, as written)',
    number(0),
    0,
  )
  .option('--server-flags <flags>', 'extra server flags for the attacks, space-separated (e.g. "--max-concurrent-streams 100")', '')
  .option('--threads <n>', 'ONNX Runtime intra-op threads of the server', number(1, true), DEFAULT_THREADS)
  .option('--model-repository <dir>', 'model repository the server loads', 'models');

interface Flags {
  streams: number;
  reconnectS: number;
  perCallStreams: number;
  serverFlags: string;
  threads: number;
  modelRepository: string;
  out?: string;
  save?: boolean;
  json?: boolean;
}

interface Flood {
  readonly kind: string;
  readonly connections: number;
  readonly path: string;
  readonly token: boolean;
  readonly message?: Buffer;
}

const ATTACKS: readonly Flood[] = [
  { kind: 'predict-no-token', connections: 1, path: POLICY_PATHS.predict, token: false },
  { kind: 'watch', connections: 1, path: HEALTH_WATCH_PATH, token: false, message: WATCH_REQUEST },
  { kind: 'stream-predict-token-idle', connections: 4, path: POLICY_PATHS.streamPredict, token: true },
];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Writes `perConnection` streams on each of the flood's connections. With `reconnectS` > 0 the attacker is
 * persistent: whenever the server closes its connection (GOAWAY), it connects again and floods again, until
 * `reconnectS` seconds have passed. Every loop is bounded: the program stops by itself.
 */
async function open(
  server: ServerProcess,
  flood: Flood,
  perConnection: number,
  reconnectS: number,
): Promise<{ connections: RawH2Connection[]; opened: number; reconnects: number; goaway: Array<number | undefined> }> {
  const [host, port] = server.address.split(':');
  const block = grpcHeaders(server.address, flood.path, flood.token ? [['authorization', `Bearer ${TOKEN}`]] : []);
  const until = performance.now() + reconnectS * 1000;
  let reconnects = 0;
  const goaway: Array<number | undefined> = [];
  const attacker = async (): Promise<{ connection: RawH2Connection; opened: number }> => {
    let connection = await RawH2Connection.connect(host, Number(port));
    let opened = await connection.flood(perConnection, block, flood.message);
    while (performance.now() < until) {
      if (!connection.closed) await connection.ping();
      if (!connection.closed) break;
      goaway.push(connection.goawayCode);
      reconnects++;
      connection = await RawH2Connection.connect(host, Number(port));
      opened += await connection.flood(perConnection, block, flood.message);
    }
    return { connection, opened };
  };
  const attackers = await Promise.all(Array.from({ length: flood.connections }, attacker));
  const connections = attackers.map((a) => a.connection);
  // Every frame written before the PING has been read by the server once it answers (or the connection closed).
  await Promise.all(connections.map((c) => c.ping()));
  for (const c of connections) if (c.goawayCode !== undefined) goaway.push(c.goawayCode);
  return { connections, opened: attackers.reduce((a, b) => a + b.opened, 0), reconnects, goaway };
}

/** RSS growth per stream, the caps out of the way: one server per kind, so each starts from the same state. */
async function perCall(f: Flags, repository: string, kind: Flood, streams: number) {
  const server = await startServerProcess({ modelRepository: repository, threads: f.threads, flags: [...UNCAPPED, '--tokens-file', tokensFile] });
  try {
    await sleep(SETTLE_MS);
    const before = processRssMb(server.pid);
    const { connections, opened } = await open(server, { ...kind, connections: 1 }, streams, 0);
    await sleep(SETTLE_MS);
    const after = processRssMb(server.pid);
    for (const c of connections) c.close();
    return { kind: kind.kind, streams: opened, rssBeforeMb: before, rssAfterMb: after, kbPerStream: round(((after - before) * 1024) / Math.max(1, opened), 1) };
  } finally {
    await server.stop();
  }
}

async function attack(f: Flags, repository: string, flood: Flood) {
  const server = await startServerProcess({
    modelRepository: repository,
    threads: f.threads,
    flags: ['--tokens-file', tokensFile, ...f.serverFlags.split(/\s+/).filter(Boolean)],
  });
  try {
    await sleep(SETTLE_MS);
    const prober = await HealthProber.start({ address: server.address, intervalMs: DEFAULT_PROBE_INTERVAL_MS, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS });
    const before = processRssMb(server.pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, processRssMb(server.pid))), 100);
    prober.begin();
    const t0 = performance.now();
    const { connections, opened, reconnects, goaway } = await open(server, flood, f.streams, f.reconnectS);
    const floodS = (performance.now() - t0) / 1000;
    await sleep(SETTLE_MS);
    const held = processRssMb(server.pid);
    const health = summarizeProbes(await prober.stop(), DEFAULT_PROBE_INTERVAL_MS);
    clearInterval(sampler);
    peak = Math.max(peak, held);
    for (const c of connections) c.close();
    const probe = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const after = await checkHealth(probe, DEFAULT_PROBE_TIMEOUT_MS).then(
      (r) => r.status,
      (e: grpc.ServiceError) => `failed: ${grpc.status[e.code]}`,
    );
    probe.close();
    const growth = round(peak - before, 1);
    return {
      kind: flood.kind,
      connections: flood.connections,
      streamsWritten: opened,
      floodS: round(floodS, 2),
      reconnects,
      /** GOAWAY codes seen, by count (11 = ENHANCE_YOUR_CALM). */
      goawayCodes: Object.fromEntries([...new Set(goaway)].map((c) => [String(c), goaway.filter((g) => g === c).length])),
      rssMb: { before, peak, held, growth },
      health,
      serverAfter: after,
      targets: {
        rssGrowthMb: { value: growth, threshold: RSS_GROWTH_TARGET_MB, pass: growth <= RSS_GROWTH_TARGET_MB },
        healthP99Ms: {
          value: health.p99,
          threshold: HEALTH_P99_TARGET_MS,
          pass: health.p99 < HEALTH_P99_TARGET_MS && Object.keys(health.failures).length === 0,
        },
        serverServingAfter: { value: after, pass: after === 'SERVING' },
      },
    };
  } finally {
    await server.stop();
  }
}

let tokensFile = '';

async function main(): Promise<void> {
  addResultOptions(program).parse();
  const f = program.opts<Flags>();
  const model = await findModel(f.modelRepository);
  const repository = isolatedRepository(model);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-flood-'));
  tokensFile = path.join(dir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify([{ token: TOKEN, role: 'robot', name: 'flood' }]));
  process.once('exit', () => {
    repository.remove();
    rmSync(dir, { recursive: true, force: true });
  });
  const perCallResults = [];
  if (f.perCallStreams > 0) {
    for (const kind of [ATTACKS[2], ATTACKS[1]]) {
      process.stderr.write(`[stream-flood] memory per open call: ${kind.kind}\n`);
      perCallResults.push(await perCall(f, repository.root, kind, f.perCallStreams));
    }
  }
  const attacks = [];
  for (const flood of ATTACKS) {
    process.stderr.write(`[stream-flood] attack: ${flood.kind}, ${flood.connections} x ${f.streams} streams\n`);
    attacks.push(await attack(f, repository.root, flood));
  }
  const result = {
    benchmark: 'stream floods',
    model: `${model.manifest.name}@${model.manifest.version}`,
    startedAt: new Date().toISOString(),
    options: f,
    memoryPerOpenCall: perCallResults,
    attacks,
    pass: attacks.every((a) => Object.values(a.targets).every((t) => t.pass)),
  };
  writeResult(resultMeta('stream-flood', { serverArgs: words(f.serverFlags), startedAt: new Date(result.startedAt) }), result, f, streamFloodSummary(result));
}

runBenchmark('bench:stream-flood', main);
