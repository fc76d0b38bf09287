/**
 * One DustClient in front of several real replicas, as a fleet dials a headless Service: replicas drain and die
 * under a running robot fleet and no robot request fails. The client's target lists the replicas
 * (`ipv4:a,b,c`); its retries and stream re-opening (src/client/service-config.ts, predict-stream.ts) do the rest.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DustClient, type PredictRequestInit, type PredictResult } from '../src/client/index.js';
import { jpeg, startTestServer, tempRepository, TINY_DIR, type TestServer } from './support/harness.js';
import { spawnServe, type ServeProcess } from './support/serve-process.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function observation(robotId: string, episodeId: string): Promise<PredictRequestInit> {
  return {
    robotId,
    episodeId,
    embodiment: 'franka_fr3',
    images: [
      { camera: 'front', encoding: 'jpeg', data: await jpeg(64, 64, [200, 40, 40]) },
      { camera: 'wrist', encoding: 'jpeg', data: await jpeg(64, 64, [40, 40, 200]) },
    ],
    state: Array.from({ length: 8 }, (_, i) => 0.1 * i),
    instruction: 'push the red block left',
    sampling: { actionSteps: 4, visionSteps: 8 },
  };
}

const until = async (what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('failover between replicas', () => {
  it('a stream that moves to another replica keeps the version that served its episode', async () => {
    // A serves dust-tiny 1 only; B serves 1 and 2, so an unpinned request on B would get version 2.
    const repoA = tempRepository([{ from: TINY_DIR, name: 'dust-tiny', version: 1 }]);
    const repoB = tempRepository([
      { from: TINY_DIR, name: 'dust-tiny', version: 1 },
      { from: TINY_DIR, name: 'dust-tiny', version: 2 },
    ]);
    cleanups.push(repoA.remove, repoB.remove);
    const a = await startTestServer({ modelRepository: repoA.root });
    cleanups.push(() => a.close());
    const b = await startTestServer({ modelRepository: repoB.root });
    cleanups.push(() => b.close());
    // pick_first: the session starts on A, the first address, and moves to B when A goes.
    const client = new DustClient(`ipv4:${a.address},${b.address}`, { loadBalancing: 'pick_first' });
    cleanups.push(() => client.close());

    const obs = await observation('robot-7', 'episode-7');
    const stream = client.stream();
    const before = [await stream.send(obs), await stream.send(obs)];
    // Some requests in flight while A drains, then the episode goes on.
    const during = [0, 1, 2, 3].map(() => stream.send(obs));
    const drained = a.server.shutdown('test: drain replica A');
    const after: PredictResult[] = [];
    for (let i = 0; i < 4; i++) after.push(await stream.send(obs));
    stream.end();
    await drained;

    const versions = [...before, ...(await Promise.all(during)), ...after].map((r) => `${r.modelName}@${r.modelVersion}`);
    expect(new Set(versions)).toEqual(new Set(['dust-tiny@1']));
    expect(stream.resumed).toBeGreaterThanOrEqual(1);
    // B served part of the episode (it credits it), and with version 1.
    const direct = new DustClient(b.address);
    cleanups.push(() => direct.close());
    expect(await direct.reportOutcome({ robotId: 'robot-7', episodeId: 'episode-7', success: true })).toEqual({ modelName: 'dust-tiny', modelVersion: 1 });
  });

  it('a robot fleet loses no request while one replica drains (SIGTERM) and another is killed (SIGKILL)', async () => {
    const replicas: ServeProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await spawnServe([], { DUST_SHUTDOWN_GRACE_SECONDS: '5' });
      cleanups.push(() => void r.child.kill('SIGKILL'));
      replicas.push(r);
    }
    const client = new DustClient(`ipv4:${replicas.map((r) => r.address).join(',')}`);
    cleanups.push(() => client.close());

    const failures: string[] = [];
    const served = new Map<string, number>();
    let stop = false;
    const count = (robot: string) => served.set(robot, (served.get(robot) ?? 0) + 1);
    const unaryRobot = async (robot: string): Promise<void> => {
      const obs = await observation(robot, `${robot}-episode`);
      while (!stop) {
        await client.predict(obs, { deadlineMs: 20_000 }).then(
          () => count(robot),
          (err: Error) => void failures.push(`${robot} Predict: ${err.message}`),
        );
      }
    };
    const streams: Array<{ resumed: number }> = [];
    const streamRobot = async (robot: string): Promise<void> => {
      const obs = await observation(robot, `${robot}-episode`);
      const stream = client.stream();
      streams.push(stream);
      while (!stop) {
        // Two observations in flight, as a robot that sends its next one before the last chunk has arrived.
        await Promise.all([stream.send(obs), stream.send(obs)]).then(
          () => (count(robot), count(robot)),
          (err: Error) => void failures.push(`${robot} StreamPredict: ${err.message}`),
        );
        if (failures.length > 0) break;
      }
      stream.end();
    };
    const total = () => [...served.values()].reduce((a, b) => a + b, 0);
    const robots = ['u0', 'u1', 'u2', 'u3'].map(unaryRobot);
    // Sessions open once the channel is connected to every replica: round_robin places them over all three
    // instead of on whichever connected first.
    await until('the unary robots to be served', () => total() >= 30);
    robots.push(...['s0', 's1', 's2', 's3', 's4', 's5'].map(streamRobot));
    await until('every robot to be served', () => served.size === 10 && total() >= 90);
    replicas[0]!.child.kill('SIGTERM');
    await until('some requests during the drain', () => total() >= 120);
    replicas[1]!.child.kill('SIGKILL');
    const afterKill = new Map(served);
    await until('every robot to be served 5 more times', () => [...served].every(([robot, n]) => n >= afterKill.get(robot)! + 5));
    stop = true;
    await Promise.all(robots);

    expect(failures).toEqual([]);
    expect(await replicas[0]!.exited).toBe(0);
    expect(await replicas[1]!.exited).toBe(null);
    // The sessions that were on the two lost replicas moved.
    expect(streams.reduce((n, s) => n + s.resumed, 0)).toBeGreaterThanOrEqual(1);
  });
});
