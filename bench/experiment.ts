/**
 * What A/B testing costs a request and the event loop (`node dist/bench/experiment.js`): the
 * experiment book's work per request (assignment by weighted rendezvous hashing, counting, the episode
 * ledger) and per outcome, measured on this thread without gRPC or inference; and, for one flush of changed
 * counters, robots and episodes into the SQLite store (a file in a temp folder), the time this thread is busy
 * at once (building the batch and posting its first chunk to the writer thread: the longest pause a flush
 * gives the event loop) and the time until the writer thread has committed every chunk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_SERVE_OPTIONS } from '../src/config/index.js';
import { ExperimentBook, experimentSettings, SqliteExperimentStore } from '../src/experiment/index.js';
import { Command } from 'commander';
import { addResultOptions, resultMeta, writeResult, type ResultTarget } from './results.js';
import { summarize, round } from './stats.js';

const ROBOTS = 1000;
const REQUESTS = 200_000;
/** Requests between flushes: 1 s of a 1000-robot fleet at 10 Hz... and a busier one. */
const FLUSH_SIZES = [1000, 10_000];
const FLUSHES = 50;

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function main(): Promise<void> {
  const target = addResultOptions(new Command('experiment')).parse().opts<ResultTarget>();
  const meta = resultMeta('experiment');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-bench-exp-'));
  try {
    const book = await ExperimentBook.open(
      new SqliteExperimentStore(path.join(dir, 'experiments.sqlite'), { flushIntervalMs: 0 }),
      quiet,
      experimentSettings(DEFAULT_SERVE_OPTIONS),
    );
    await book.setSplit('m', {
      weights: [
        { version: 1, weight: 0.9 },
        { version: 2, weight: 0.1 },
      ],
      controlVersion: 1,
      stickyKey: 'robot',
      salt: 'bench',
      shadowVersion: 0,
      shadowFraction: 0,
    });
    const ready = [1, 2];
    let episode = 0;
    const request = (i: number) => {
      const robot = `robot-${i % ROBOTS}`;
      const ep = `ep-${Math.floor(i / (ROBOTS * 20))}-${i % ROBOTS}`;
      const a = book.assign('m', ready, robot, ep)!;
      void book.served(a, { robotId: robot, episodeId: ep, requestId: '', latencyMs: 20 + (i % 50), visionSteps: 8, worldModelSurprise: 0.01 });
      return ep;
    };
    // Warm up (JIT), then time requests.
    for (let i = 0; i < 20_000; i++) request(i);
    await book.flush();
    let t0 = performance.now();
    for (let i = 0; i < REQUESTS; i++) request(i);
    const perRequestUs = ((performance.now() - t0) * 1000) / REQUESTS;
    t0 = performance.now();
    for (let i = 0; i < ROBOTS; i++) await book.outcome(`robot-${i}`, `ep-0-${i}`, i % 3 === 0);
    const perOutcomeUs = ((performance.now() - t0) * 1000) / ROBOTS;
    await book.flush();

    const flushes: Record<string, { eventLoopMs: ReturnType<typeof summarize>; committedMs: ReturnType<typeof summarize> }> = {};
    // Warm up the flush path (the sketch encoder and the writer thread) before timing it.
    for (let f = 0; f < 20; f++) {
      request(f);
      await book.flush();
    }
    for (const size of FLUSH_SIZES) {
      const busy: number[] = [];
      const committed: number[] = [];
      for (let f = 0; f < FLUSHES; f++) {
        // New episodes and robots each round, so the flush writes ledger and robot rows too.
        for (let i = 0; i < size; i++) {
          const robot = `robot-${f}-${i % ROBOTS}`;
          const a = book.assign('m', ready, robot, `flush-${size}-${f}-${episode++}`)!;
          void book.served(a, {
            robotId: robot,
            episodeId: `flush-${size}-${f}-${episode}`,
            requestId: '',
            latencyMs: 25,
            visionSteps: 8,
            worldModelSurprise: undefined,
          });
        }
        const t = performance.now();
        const written = book.flush();
        busy.push(performance.now() - t);
        await written;
        committed.push(performance.now() - t);
      }
      flushes[`${size} requests`] = { eventLoopMs: summarize(busy), committedMs: summarize(committed) };
    }
    await book.close();
    writeResult(
      meta,
      {
        robots: ROBOTS,
        requests: REQUESTS,
        perRequestUs: round(perRequestUs, 2),
        perOutcomeUs: round(perOutcomeUs, 2),
        flushMs: flushes,
        note: 'flushMs: one flush after that many requests, each from a new episode, with up to 1000 new robots; eventLoopMs = building the batch and posting its first chunk of at most 1000 rows (the event loop is free between chunks), committedMs = until the writer thread committed all chunks',
      },
      target,
      [
        `per request ${round(perRequestUs, 2)} µs, per outcome ${round(perOutcomeUs, 2)} µs`,
        ...Object.entries(flushes).map(([size, f]) => `flush after ${size}: event loop p99 ${f.eventLoopMs.p99} ms, committed p99 ${f.committedMs.p99} ms`),
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
