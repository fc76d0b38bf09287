/**
 * Two real servers sharing one PostgreSQL experiment store (this host's binaries on a temp cluster), as two
 * replicas behind a load balancer: a split set on one replica routes the other's robots the same way, requests
 * and outcomes that reach either replica add up in GetExperiment on both, and a stream that resumes on the other
 * replica after its first one drains stays in its episode's experiment, each of its requests counted once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DustClient, type ExperimentResult } from '@dust-serve/client';
import { startTestServer, type TestServer } from './support/harness.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';
import { WITH_POSTGRES } from './support/tools.js';
import { clientOf, MODEL, robotRequest, versionsRepository } from './support/versions.js';
import { eventually } from './support/eventually.js';

const counts = (e: ExperimentResult) =>
  e.variants.map((v) => ({ version: v.version, requests: v.requests, episodesServed: v.episodesServed, episodes: v.episodes, successes: v.successes }));

WITH_POSTGRES.describe('replicas sharing a PostgreSQL experiment store', () => {
  let pg: TestPostgres;
  let repo: { root: string; remove(): void };
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    pg = await startPostgres();
    repo = versionsRepository([1, 2]);
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    repo?.remove();
    pg?.remove();
  });

  async function replicas(n: number): Promise<{ servers: TestServer[]; clients: DustClient[] }> {
    const url = await pg.database();
    const servers: TestServer[] = [];
    for (let i = 0; i < n; i++) {
      const s = await startTestServer({
        modelRepository: repo.root,
        warmup: false,
        experimentStore: 'postgres',
        postgresUrl: url,
        experimentCountWaitMs: 30_000,
      });
      cleanups.push(() => s.close());
      servers.push(s);
    }
    const clients = servers.map((s) => clientOf(s.address));
    cleanups.push(() => clients.forEach((c) => c.close()));
    return { servers, clients };
  }

  it('one split for both replicas, and GetExperiment on either reports what both served and were told', async () => {
    const {
      clients: [a, b],
    } = await replicas(2);
    const split = await a.setTrafficSplit({
      model: MODEL,
      weights: [
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
      ],
      controlVersion: 1,
      salt: 'fleet-1',
    });
    // B follows A's change (LISTEN/NOTIFY): its ListModels shows the split's weights.
    await eventually(async () => (await b.listModels()).models.every((m) => m.trafficWeight === 0.5), 5000);

    const expected = new Map<number, { version: number; requests: number; episodesServed: number; episodes: number; successes: number }>();
    for (let r = 0; r < 8; r++) {
      const robot = `robot-${r}`;
      const versions = new Set<number>();
      // Three requests of one episode, spread over the replicas as a round-robin balancer would.
      for (let i = 0; i < 3; i++) versions.add((await [a, b][(r + i) % 2].predict(await robotRequest(robot, { episodeId: `${robot}-ep` }))).modelVersion);
      expect(versions.size).toBe(1);
      const version = [...versions][0];
      // The outcome goes to a replica that may not have served the episode's first request.
      const success = r % 3 !== 0;
      expect(await [b, a][r % 2].reportOutcome({ robotId: robot, episodeId: `${robot}-ep`, success })).toEqual({
        modelName: MODEL,
        modelVersion: version,
        counted: true,
      });
      const e = expected.get(version) ?? { version, requests: 0, episodesServed: 0, episodes: 0, successes: 0 };
      expected.set(version, {
        version,
        requests: e.requests + 3,
        episodesServed: e.episodesServed + 1,
        episodes: e.episodes + 1,
        successes: e.successes + (success ? 1 : 0),
      });
    }
    expect([...expected.keys()].sort()).toEqual([1, 2]);
    const [ea, eb] = [await a.getExperiment(MODEL), await b.getExperiment(MODEL)];
    expect(ea.experimentId).toBe(split.experimentId);
    expect(counts(ea)).toEqual([...expected.values()].sort((x, y) => x.version - y.version));
    expect(counts(eb)).toEqual(counts(ea));
    // A repeated outcome, on either replica, is not counted again.
    expect((await b.reportOutcome({ robotId: 'robot-1', episodeId: 'robot-1-ep', success: false })).counted).toBe(false);
    expect(counts(await b.getExperiment(MODEL))).toEqual(counts(ea));
  });

  it('a stream that resumes on the other replica stays in its episode’s experiment: every request counted once, the outcome counted', async () => {
    const {
      servers: [sa, sb],
      clients: [a],
    } = await replicas(2);
    await a.setTrafficSplit({
      model: MODEL,
      weights: [
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
      ],
      controlVersion: 1,
      salt: 'fleet-2',
    });
    // pick_first: the session starts on A and moves to B when A drains.
    const client = new DustClient(`ipv4:${sa.address},${sb.address}`, { loadBalancing: 'pick_first' });
    cleanups.push(() => client.close());
    const obs = await robotRequest('robot-moving', { episodeId: 'moving-ep' });
    const stream = client.stream();
    const before = [await stream.send(obs), await stream.send(obs)];
    const during = [0, 1, 2, 3].map(() => stream.send(obs));
    const drained = sa.server.shutdown('test: drain replica A');
    const after = [];
    for (let i = 0; i < 4; i++) after.push(await stream.send(obs));
    stream.end();
    await drained;
    const results = [...before, ...(await Promise.all(during)), ...after];
    expect(stream.resumed).toBeGreaterThanOrEqual(1);
    const version = results[0].modelVersion;
    expect(new Set(results.map((r) => r.modelVersion))).toEqual(new Set([version]));

    const direct = clientOf(sb.address);
    cleanups.push(() => direct.close());
    expect(await direct.reportOutcome({ robotId: 'robot-moving', episodeId: 'moving-ep', success: true })).toEqual({
      modelName: MODEL,
      modelVersion: version,
      counted: true,
    });
    const row = (await direct.getExperiment(MODEL)).variants.find((v) => v.version === version)!;
    expect(row).toMatchObject({ requests: results.length, robots: 1, episodesServed: 1, episodes: 1, successes: 1 });
  });
});
