/**
 * The shared PostgreSQL experiment store against a real PostgreSQL (this host's binaries on a temp cluster):
 * replicas agree on one experiment, a split change reaches the others by NOTIFY (and by polling when a
 * notification is lost), counts from concurrent writers in several processes add up exactly (a request retried
 * on several replicas counts once, an outcome reported to several counts once), sketches merge exactly, a
 * resumed stream's pinned requests count in their episode's experiment, and an outage costs no request.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { UnavailableError } from '../src/errors/index.js';
import { DEFAULT_SERVE_OPTIONS } from '../src/config/index.js';
import { ExperimentBook, experimentSettings, PostgresExperimentStore, type PostgresStoreOptions } from '../src/experiment/index.js';
import { LatencySketch } from '../src/experiment/latency-sketch.js';
import type { ServedEvent } from '../src/experiment/store.js';
import { newExperiment, servedEvent as event } from '../src/experiment/testing/records.js';
import { eventually } from './support/eventually.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';
import { WITH_POSTGRES } from './support/tools.js';

/** The server's default settings of the experiment book. */
const SETTINGS = experimentSettings(DEFAULT_SERVE_OPTIONS);

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A model's implicit experiment (no split yet). */
const experiment = (over: Parameters<typeof newExperiment>[0] = {}) => newExperiment({ salt: '', weights: [], controlVersion: 0, ...over });

const split = {
  weights: [
    { version: 1, weight: 1 },
    { version: 2, weight: 1 },
  ],
  controlVersion: 1,
  stickyKey: 'robot' as const,
  salt: 'fleet',
  shadowVersion: 0,
  shadowFraction: 0,
};

WITH_POSTGRES.describe('PostgresExperimentStore', () => {
  let server: TestPostgres;
  const opened: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    for (const s of opened.splice(0).reverse()) await s.close().catch(() => undefined);
    server?.remove();
  });

  async function connect(url: string, options: Partial<PostgresStoreOptions> = {}): Promise<PostgresExperimentStore> {
    const store = await PostgresExperimentStore.connect({ connectionString: url, log: quiet, countWaitMs: 60_000, ...options });
    opened.push(store);
    return store;
  }
  async function book(store: PostgresExperimentStore, refreshIntervalMs = 0): Promise<ExperimentBook> {
    const b = await ExperimentBook.open(store, quiet, { ...SETTINGS, refreshIntervalMs });
    opened.push(b);
    return b;
  }

  it('replicas starting together create the tables once and agree on one implicit experiment per model', async () => {
    const url = await server.database();
    const stores = await Promise.all(Array.from({ length: 4 }, () => connect(url)));
    const records = await Promise.all(stores.map((s) => s.ensureExperiment(experiment())));
    expect(new Set(records.map((r) => r.id)).size).toBe(1);
    expect(await server.query('SELECT count(*)::int AS n FROM dust_experiments', [], url.split('/').pop())).toEqual([{ n: 1 }]);
  });

  it('a split set on one replica reaches the others by NOTIFY; every replica assigns a robot to the same version', async () => {
    const url = await server.database();
    const [a, b, c] = await Promise.all([connect(url), connect(url), connect(url)]).then((s) => Promise.all(s.map((x) => book(x))));
    await Promise.all([a, b, c].map((x) => x.ensure('m')));
    const record = await a.setSplit('m', split);
    await eventually(() => b.split('m')?.id === record.id && c.split('m')?.id === record.id, 5000);
    const robots = Array.from({ length: 200 }, (_, i) => `robot-${i}`);
    const assigned = (x: ExperimentBook) => robots.map((r) => x.assign('m', [1, 2], r, '')!.version);
    expect(assigned(b)).toEqual(assigned(a));
    expect(assigned(c)).toEqual(assigned(a));
    expect(new Set(assigned(a))).toEqual(new Set([1, 2]));
    // A weight change in the same experiment travels the same way.
    await b.setSplit('m', {
      ...split,
      weights: [
        { version: 1, weight: 1 },
        { version: 2, weight: 3 },
      ],
    });
    await eventually(() => a.split('m')?.weights[1].weight === 0.75 && c.split('m')?.weights[1].weight === 0.75, 5000);
  });

  it('without a notification, a replica picks up a split change by polling within its refresh interval', async () => {
    const url = await server.database();
    const b = await book(await connect(url), 300);
    await b.ensure('m');
    const db = url.split('/').pop();
    // Written behind the store's back: no NOTIFY, as if the notification were lost.
    await server.query(
      `INSERT INTO dust_experiments (model, salt, weights, control_version, sticky_key, shadow_version, shadow_fraction, started_at)
       VALUES ('m', 'polled', '[{"version":1,"weight":0.5},{"version":2,"weight":0.5}]', 1, 'robot', 0, 0, 0)`,
      [],
      db,
    );
    const t0 = Date.now();
    await eventually(() => b.split('m')?.salt === 'polled', 5000);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a stored split that cannot route is refused at load with a warning; the model serves its newest READY version', async () => {
    const url = await server.database();
    const db = url.split('/').pop();
    await connect(url); // creates the tables
    // What a server without the weight-sum check stored for weights [1e308, 1e308]: both shares 0.
    await server.query(
      `INSERT INTO dust_experiments (model, salt, weights, control_version, sticky_key, shadow_version, shadow_fraction, started_at)
       VALUES ('m', 'overflowed', '[{"version":1,"weight":0},{"version":2,"weight":0}]', 1, 'robot', 0, 0, 0)`,
      [],
      db,
    );
    const warnings: string[] = [];
    const b = await ExperimentBook.open(
      await connect(url),
      { ...quiet, warn: (_obj: object, msg: string) => warnings.push(msg) },
      { ...SETTINGS, refreshIntervalMs: 0 },
    );
    opened.push(b);
    expect(warnings).toEqual([expect.stringMatching(/stored traffic split refused/)]);
    for (let i = 0; i < 50; i++) expect(b.assign('m', [1, 2], `r${i}`, '')?.version).toBe(2);
    const record = await b.setSplit('m', split);
    expect(record.salt).toBe('fleet');
    expect(record.weights).toEqual([
      { version: 1, weight: 0.5 },
      { version: 2, weight: 0.5 },
    ]);
  });

  it('a lost notification connection is re-opened, and the replica re-reads the splits when it is back', async () => {
    const url = await server.database();
    const [a, b] = await Promise.all([connect(url), connect(url, { retryMs: 100 })]).then((s) => Promise.all(s.map((x) => book(x))));
    await a.ensure('m');
    await eventually(() => b.split('m') !== undefined, 5000);
    await server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dust-serve listener' AND datname = $1", [
      url.split('/').pop(),
    ]);
    const record = await a.setSplit('m', split);
    await eventually(() => b.split('m')?.id === record.id, 5000);
  });

  it('counts from three processes writing at once add up exactly: retried requests and repeated outcomes count once, sketches merge exactly', async () => {
    const url = await server.database();
    const store = await connect(url);
    const { id } = await store.ensureExperiment(experiment({ salt: 's', weights: split.weights, controlVersion: 1 }));
    const WORKERS = 3;
    const versionOf = (episode: number) => 1 + (episode % 2);
    const latencyOf = (n: number) => 5 + ((n * 37) % 400) / 7;
    const request = (key: string, n: number): ServedEvent => {
      const robot = n % 40;
      const episode = n % 120;
      return event(id, {
        version: versionOf(episode),
        robotId: `robot-${robot}`,
        episodeId: `ep-${episode}`,
        requestId: key,
        latencyMs: latencyOf(n),
        visionSteps: 4 + (n % 3) * 4,
        worldModelSurprise: n % 5 === 0 ? undefined : 0.25,
      });
    };
    // Each worker: 500 requests of its own, and the same 150 "retried" requests every worker sends.
    const shared = Array.from({ length: 150 }, (_, i) => request(`retry-${i}`, 10_000 + i));
    const plans = Array.from({ length: WORKERS }, (_, w) => {
      const own = Array.from({ length: 500 }, (_, i) => request(`w${w}-${i}`, w * 500 + i));
      return {
        served: [...own.slice(0, 100 * w), ...shared, ...own.slice(100 * w)],
        // Every worker reports every episode: each must count once.
        outcomes: Array.from({ length: 120 }, (_, e) => ({ robotId: `robot-${e % 40}`, episodeId: `ep-${e}`, success: e % 3 === 0 })),
      };
    });
    // An episode belongs to its first request's robot; keep the outcome on the robot that served it.
    const episodeRobot = new Map<string, string>();
    for (const p of plans) for (const e of p.served) if (!episodeRobot.has(e.episodeId)) episodeRobot.set(e.episodeId, e.robotId);
    for (const p of plans) p.outcomes = p.outcomes.filter((o) => episodeRobot.get(o.episodeId) === o.robotId);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-writers-'));
    try {
      const results = await Promise.all(
        plans.map(async (plan, w) => {
          const file = path.join(dir, `plan-${w}.json`);
          writeFileSync(file, JSON.stringify(plan));
          const { stdout } = await promisify(execFile)(process.execPath, ['test/support/experiment-writer.mjs', url, file], { encoding: 'utf8' });
          return JSON.parse(stdout) as { counted: number };
        }),
      );
      // Expected: every distinct request once.
      const distinct = new Map<string, ServedEvent>();
      for (const p of plans) for (const e of p.served) distinct.set(e.requestId, e);
      const outcomes = plans[0].outcomes;
      expect(results.reduce((s, r) => s + r.counted, 0)).toBe(outcomes.length);
      const totals = await store.totals(id);
      for (const version of [1, 2]) {
        const mine = [...distinct.values()].filter((e) => e.version === version);
        const sketch = new LatencySketch();
        for (const e of mine) sketch.record(e.latencyMs);
        const t = totals.find((x) => x.version === version)!;
        const episodes = new Set(mine.map((e) => e.episodeId));
        const reported = outcomes.filter((o) => versionOf(Number(o.episodeId.slice(3))) === version);
        expect(t).toMatchObject({
          requests: mine.length,
          robots: new Set(mine.map((e) => e.robotId)).size,
          episodesServed: episodes.size,
          episodes: reported.length,
          successes: reported.filter((o) => o.success).length,
          visionStepsSum: mine.reduce((s, e) => s + e.visionSteps, 0),
          surpriseCount: mine.filter((e) => e.worldModelSurprise !== undefined).length,
        });
        expect(t.surpriseSum).toBeCloseTo(0.25 * t.surpriseCount, 9);
        expect(t.latency.bins()).toEqual(sketch.bins());
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a request_id counts once per robot and episode: a retry on another replica once, the same id in the next episode again', async () => {
    const url = await server.database();
    const [a, b] = await Promise.all([connect(url), connect(url)]);
    const { id } = await a.ensureExperiment(experiment({ salt: 's', weights: split.weights }));
    // A robot whose request ids restart every episode.
    await a.served(event(id, { episodeId: 'e1', requestId: '1' }));
    await b.served(event(id, { episodeId: 'e1', requestId: '1' }));
    await b.served(event(id, { episodeId: 'e2', requestId: '1' }));
    await a.served(event(id, { robotId: 'other', episodeId: 'e1', requestId: '1' }));
    expect((await a.totals(id)).find((t) => t.version === 1)).toMatchObject({ requests: 3, episodesServed: 3, robots: 2 });
  });

  it('a pinned request counts on any replica when it continues an episode the split gave that version', async () => {
    const url = await server.database();
    const [a, b] = await Promise.all([connect(url), connect(url)]);
    const { id } = await a.ensureExperiment(experiment({ salt: 's', weights: split.weights }));
    await a.served(event(id, { version: 2, episodeId: 'moved', requestId: 'q1' }));
    // The stream resumed on replica b, pinned to the episode's version: counted there.
    await b.served(event(id, { version: 2, episodeId: 'moved', requestId: 'q2', pinned: true }));
    // A pin to another version, and an episode that started pinned, are not counted.
    await b.served(event(id, { version: 1, episodeId: 'moved', requestId: 'q3', pinned: true }));
    await b.served(event(id, { version: 1, episodeId: 'pinned', requestId: 'q4', pinned: true }));
    const totals = await b.totals(id);
    expect(totals.find((t) => t.version === 2)).toMatchObject({ requests: 2, episodesServed: 1 });
    expect(totals.find((t) => t.version === 1)?.requests ?? 0).toBe(0);
    expect(await b.credit('r', 'moved', true)).toEqual({ model: 'm', version: 2, experimentId: id, counted: true });
    expect(await a.credit('r', 'moved', false)).toEqual({ model: 'm', version: 2, experimentId: id, counted: false });
    expect(await a.credit('r', 'pinned', true)).toEqual({ model: 'm', version: 1, experimentId: 0, counted: false });
    expect(await a.credit('r', 'never-served', true)).toBeUndefined();
    expect((await a.totals(id)).find((t) => t.version === 2)).toMatchObject({ episodes: 1, successes: 1 });
  });

  it('sequential tests from several replicas: the p-value is a running minimum and the first decision stays', async () => {
    const url = await server.database();
    const store = await connect(url);
    const [a, b] = await Promise.all([book(store), connect(url).then((s) => book(s))]);
    await a.ensure('m');
    const record = await a.setSplit('m', split);
    await eventually(() => b.split('m')?.id === record.id, 5000);
    let k = 0;
    for (let round = 0; round < 150; round++) {
      for (const [version, rate] of [
        [1, 2],
        [2, 7],
      ] as const) {
        const episode = `e${k++}`;
        await store.served(event(record.id, { version, episodeId: episode, requestId: episode }));
        // Outcomes alternate between the replicas.
        await (k % 2 ? a : b).outcome('r', episode, round % 10 < rate);
      }
    }
    const [ra, rb] = await Promise.all([a.report('m', [1, 2], [1, 2]), b.report('m', [1, 2], [1, 2])]);
    expect(ra).toEqual(rb);
    expect(ra.variants.map((v) => [v.episodes, v.successes])).toEqual([
      [150, 30],
      [150, 105],
    ]);
    expect(ra.variants[1].decision).toBe('candidate better');
    expect(ra.variants[1].alwaysValidPValue).toBeLessThan(0.05);
  });

  it('while PostgreSQL is down, responses do not wait and nothing throws; the counts are written when it is back', async () => {
    const own = await startPostgres();
    try {
      const url = own.url();
      const store = await PostgresExperimentStore.connect({ connectionString: url, log: quiet, countWaitMs: 5000, retryMs: 200 });
      const b = await ExperimentBook.open(store, quiet, { ...SETTINGS, refreshIntervalMs: 0 });
      try {
        await b.ensure('m');
        const id = b.split('m')!.id;
        await store.served(event(id, { requestId: 'before' }));
        own.stop();
        const t0 = Date.now();
        await store.served(event(id, { requestId: 'during-1' }));
        await store.served(event(id, { requestId: 'during-2' }));
        // The first write fails (after its connection attempt); later responses stop waiting altogether.
        expect(Date.now() - t0).toBeLessThan(5000 + 2000);
        const t1 = Date.now();
        await store.served(event(id, { requestId: 'during-3' }));
        expect(Date.now() - t1).toBeLessThan(100);
        await expect(b.report('m', [1], [1])).rejects.toThrow(UnavailableError);
        await expect(b.outcome('r', 'e', true)).rejects.toThrow(UnavailableError);
        own.start();
        await eventually(async () => (await store.totals(id).catch(() => []))[0]?.requests === 4, 15_000);
      } finally {
        await b.close();
      }
    } finally {
      own.remove();
    }
  });
});
