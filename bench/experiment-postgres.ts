/**
 * What the shared PostgreSQL experiment store adds to a response, next to the embedded SQLite store
 * (`node dist/bench/experiment-postgres.js --postgres-url postgres://user@host/db`).
 *
 * PostgreSQL: several replicas (one store each, all in this process and on its one event loop) count served
 * requests at a given rate each, open loop, every robot in its own episodes; for each request the time from
 * handing the count to the store until its group commit is done (a response waits for this, up to
 * `experimentCountWaitMs`), and the counts read back at the end, which must equal what was sent. SQLite: one
 * store (a file cannot be shared) under one replica's load; its counts live in memory, so a request waits for
 * nothing, and the file is written by a timer; the time of the last flush is reported. Each run uses a new
 * model name, so runs against one database do not mix (the dust_* tables: drop them to start again).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { DEFAULT_SERVE_OPTIONS } from '../src/config/index.js';
import { ExperimentBook, experimentSettings, PostgresExperimentStore, SqliteExperimentStore, type ExperimentStore } from '../src/experiment/index.js';
import { number } from './cli-args.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { round, summarize, type LatencySummary } from './stats.js';

interface Load {
  readonly rate: number;
  readonly seconds: number;
  readonly robots: number;
  /** Requests per episode. */
  readonly episodeLength: number;
}

interface RunResult {
  readonly sent: number;
  readonly counted: number;
  readonly exact: boolean;
  readonly achievedPerSecond: number;
  readonly countWaitMs: LatencySummary;
}

const quiet = { info: () => undefined, warn: () => undefined, error: (obj: object, msg: string) => console.error(msg, obj) };

/** A 50/50 split on a fresh model; returns its experiment's id. */
async function experiment(book: ExperimentBook, model: string): Promise<number> {
  await book.ensure(model);
  const { id } = await book.setSplit(model, {
    weights: [
      { version: 1, weight: 1 },
      { version: 2, weight: 1 },
    ],
    controlVersion: 1,
    stickyKey: 'robot',
    salt: model,
    shadowVersion: 0,
    shadowFraction: 0,
  });
  return id;
}

/** Every store sends `load` open loop at once; resolves when each count has been released. */
async function send(stores: readonly ExperimentStore[], experimentId: number, model: string, load: Load): Promise<Omit<RunResult, 'counted' | 'exact'>> {
  const waits: number[] = [];
  const perStore = Math.round(load.rate * load.seconds);
  const started = performance.now();
  await Promise.all(
    stores.map(async (store, r) => {
      const pending: Array<Promise<void>> = [];
      for (let i = 0; i < perStore; i++) {
        // Open loop: requests arrive on schedule whatever the store does.
        const delay = started + (i * 1000) / load.rate - performance.now();
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
        // Robot and request ids new in every run: a shared store counts a (robot_id, episode_id, request_id) once.
        const robot = `${model}-r${r}-${i % load.robots}`;
        const t0 = performance.now();
        pending.push(
          store
            .served({
              experimentId,
              model,
              version: 1 + (i % 2),
              pinned: false,
              robotId: robot,
              episodeId: `${robot}-e${Math.floor(i / load.robots / load.episodeLength)}`,
              requestId: String(i),
              latencyMs: 50,
              visionSteps: 8,
              worldModelSurprise: 0.1,
            })
            .then(() => void waits.push(performance.now() - t0)),
        );
      }
      await Promise.all(pending);
    }),
  );
  const sent = perStore * stores.length;
  return { sent, achievedPerSecond: round(sent / ((performance.now() - started) / 1000), 1), countWaitMs: summarize(waits) };
}

async function counted(store: ExperimentStore, experimentId: number): Promise<number> {
  return (await store.totals(experimentId)).reduce((s, t) => s + t.requests, 0);
}

async function postgres(url: string, replicas: number, load: Load): Promise<RunResult & { replicas: number }> {
  // countWaitMs high: the wait measured is the commit, not the server's cap on it.
  const stores = await Promise.all(
    Array.from({ length: replicas }, () => PostgresExperimentStore.connect({ connectionString: url, countWaitMs: 60_000, log: quiet })),
  );
  const book = await ExperimentBook.open(stores[0], quiet, { ...experimentSettings(DEFAULT_SERVE_OPTIONS), refreshIntervalMs: 0 });
  try {
    const model = `bench-${Date.now()}`;
    const id = await experiment(book, model);
    const run = await send(stores, id, model, load);
    const n = await counted(stores[0], id);
    return { replicas, ...run, counted: n, exact: n === run.sent };
  } finally {
    await book.close();
    await Promise.all(stores.slice(1).map((s) => s.close()));
  }
}

async function sqlite(load: Load): Promise<RunResult & { lastFlushMs: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-bench-exp-pg-'));
  const store = new SqliteExperimentStore(path.join(dir, 'experiments.sqlite'), { log: quiet });
  const book = await ExperimentBook.open(store, quiet, experimentSettings(DEFAULT_SERVE_OPTIONS));
  try {
    const model = 'bench';
    const id = await experiment(book, model);
    const run = await send([store], id, model, load);
    const t0 = performance.now();
    await store.flush();
    const lastFlushMs = round(performance.now() - t0);
    const n = await counted(store, id);
    return { ...run, counted: n, exact: n === run.sent, lastFlushMs };
  } finally {
    await book.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = addResultOptions(
    new Command()
      .requiredOption('--postgres-url <url>', 'PostgreSQL to use (the PG* variables fill in the rest) [DUST_POSTGRES_URL]', process.env.DUST_POSTGRES_URL)
      .option('--replicas <n>', 'PostgreSQL stores writing at once', number(1, true), 3)
      .option('--rate <per-second>', 'requests per second per replica', number(1), 200)
      .option('--seconds <s>', 'how long each replica sends', number(1), 10)
      .option('--robots <n>', 'robots per replica', number(1, true), 100)
      .option('--episode-length <n>', 'requests per episode', number(1, true), 20)
      .option('--no-sqlite', 'skip the SQLite comparison'),
  )
    .parse()
    .opts<{
      postgresUrl: string;
      replicas: number;
      rate: number;
      seconds: number;
      robots: number;
      episodeLength: number;
      sqlite: boolean;
      out?: string;
      save?: boolean;
      json?: boolean;
    }>();
  const meta = resultMeta('experiment-postgres');
  const load: Load = { rate: opts.rate, seconds: opts.seconds, robots: opts.robots, episodeLength: opts.episodeLength };

  const result = {
    load,
    postgres: await postgres(opts.postgresUrl, opts.replicas, load),
    sqlite: opts.sqlite ? await sqlite(load) : undefined,
    note:
      'countWaitMs: from handing a served request to the store until the store releases it (PostgreSQL: its group commit; SQLite: at once, counted in memory). ' +
      'The PostgreSQL replicas share this process and its event loop. exact: the counts read back equal the requests sent.',
  };
  const exact = (r: { exact: boolean } | undefined) => (r === undefined ? [] : [r.exact ? 'exact' : 'NOT exact']);
  writeResult(meta, result, opts, [
    `PostgreSQL, ${opts.replicas} replicas: ${result.postgres.achievedPerSecond} requests/s counted, count wait p99 ${result.postgres.countWaitMs.p99} ms, ${exact(result.postgres).join('')}`,
    ...(result.sqlite
      ? [`SQLite: ${result.sqlite.achievedPerSecond} requests/s counted, count wait p99 ${result.sqlite.countWaitMs.p99} ms, ${exact(result.sqlite).join('')}`]
      : []),
  ]);
  if (!result.postgres.exact || (result.sqlite && !result.sqlite.exact)) process.exitCode = 1;
}

await main();
