/**
 * Experiments survive a restart of the built server (`dust-serve serve` as a child process, as an operator
 * runs it): salt, weights, counters, robots, the sequential tests and the episode ledger come back from the
 * SQLite file, after a graceful SIGTERM and after a SIGKILL (losing at most the last flush interval).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DustClient, ExperimentResult } from '@dust-serve/client';
import { DEFAULT_FLUSH_INTERVAL_MS } from '../src/experiment/index.js';
import { eventually } from './support/eventually.js';
import { spawnServe, type ServeProcess } from './support/serve-process.js';
import { clientOf, MODEL, robotRequest, versionsRepository } from './support/versions.js';

interface Served {
  readonly child: ServeProcess['child'];
  readonly client: DustClient;
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

/** The built server on `repository` with its experiments in the file `db`. */
async function serve(repository: string, db: string): Promise<Served> {
  const server = await spawnServe(['--model-repository', repository, '--experiment-db', db, '--shutdown-grace-seconds', '2']);
  const client = clientOf(server.address);
  return {
    child: server.child,
    client,
    async stop(signal) {
      client.close();
      server.child.kill(signal);
      return server.exited;
    },
  };
}

let repo: ReturnType<typeof versionsRepository>;
let dir: string;
let db: string;
const live: Served[] = [];

beforeAll(() => {
  repo = versionsRepository([1, 2]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'dust-persist-'));
  db = path.join(dir, 'state', 'experiments.sqlite');
});

afterAll(() => {
  for (const s of live) s.child.kill('SIGKILL');
  repo?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const robots = Array.from({ length: 8 }, (_, i) => `persist-${i}`);

/** The experiment once mirrored shadow requests have finished (two reads 300 ms apart agree). */
async function settled(client: DustClient): Promise<ExperimentResult> {
  let last: string | undefined;
  let now!: ExperimentResult;
  await eventually(
    async () => {
      now = await client.getExperiment(MODEL);
      const same = JSON.stringify(now) === last;
      last = JSON.stringify(now);
      return same;
    },
    { what: 'the experiment to stop changing (mirrored shadow requests finished)', timeoutMs: 30_000, intervalMs: 300 },
  );
  return now;
}

/** What must come back identical after a restart (latency quantiles too: the sketches are stored). */
function durable(e: ExperimentResult) {
  return { ...e, variants: e.variants.map(({ state: _state, ...v }) => v) };
}

describe('persistence across restarts of the built server', () => {
  it('SIGTERM, restart: the experiment, its counters and the assignments are the same; late outcomes are credited', async () => {
    const first = await serve(repo.root, db);
    live.push(first);
    await first.client.setTrafficSplit({
      model: MODEL,
      weights: [
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
      ],
      controlVersion: 1,
      salt: 'persisted-salt',
      shadowVersion: 2,
      shadowFraction: 0.5,
    });
    const assigned = new Map<string, number>();
    for (const robot of robots) {
      assigned.set(robot, (await first.client.predict(await robotRequest(robot, { episodeId: `${robot}-a` }))).modelVersion);
      await first.client.predict(await robotRequest(robot, { episodeId: `${robot}-b` }));
      await first.client.reportOutcome({ robotId: robot, episodeId: `${robot}-a`, success: robot.endsWith('1') || robot.endsWith('2') });
    }
    const before = await settled(first.client);
    expect(before.variants.reduce((n, v) => n + v.episodes, 0)).toBe(robots.length);
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(existsSync(db)).toBe(true);

    const second = await serve(repo.root, db);
    live.push(second);
    expect(durable(await second.client.getExperiment(MODEL))).toEqual(durable(before));
    for (const robot of robots) expect((await second.client.predict(await robotRequest(robot))).modelVersion).toBe(assigned.get(robot));
    // Episode b was served before the restart; its outcome arrives after it.
    const credit = await second.client.reportOutcome({ robotId: robots[0], episodeId: `${robots[0]}-b`, success: true });
    expect(credit).toEqual({ modelName: MODEL, modelVersion: assigned.get(robots[0]), counted: true });
    // An outcome reported before the restart is not counted again.
    expect(await second.client.reportOutcome({ robotId: robots[0], episodeId: `${robots[0]}-a`, success: true })).toMatchObject({ counted: false });
    const after = await second.client.getExperiment(MODEL);
    const row = after.variants.find((v) => v.version === assigned.get(robots[0]))!;
    const was = before.variants.find((v) => v.version === assigned.get(robots[0]))!;
    expect(row.episodes).toBe(was.episodes + 1);
    expect(row.requests).toBe(was.requests + robots.filter((r) => assigned.get(r) === row.version).length);
    expect(row.robots).toBe(was.robots);

    // SIGKILL after a flush interval: nothing counted before the interval is lost. The wait is the behaviour under
    // test (the store's durability promise is one interval), not synchronisation.
    await new Promise((r) => setTimeout(r, DEFAULT_FLUSH_INTERVAL_MS * 2));
    const beforeKill = await settled(second.client);
    await second.stop('SIGKILL');
    const third = await serve(repo.root, db);
    live.push(third);
    expect(durable(await third.client.getExperiment(MODEL))).toEqual(durable(beforeKill));
    expect(await third.stop('SIGTERM')).toBe(0);
  });
});
