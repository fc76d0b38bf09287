/**
 * One DustClient in front of several real replicas, as a fleet dials a headless Service: replicas drain and die
 * under a running robot fleet and no robot request fails. The client's target lists the replicas
 * (`ipv4:a,b,c`); its retries and stream re-opening (clients/typescript/src/service-config.ts, predict-stream.ts) do the rest.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { DustClient, type PredictResult } from '@dust-serve/client';
import { observation, runFleetThroughFailover } from './support/fleet.js';
import { eventually } from './support/eventually.js';
import { startTestServer, tempRepository, TINY_DIR } from './support/harness.js';
import { spawnServe, type ServeProcess } from './support/serve-process.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

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
    // B served part of the episode (it credits it), and with version 1; the resumed stream was pinned there, so the
    // outcome is not counted in B's experiment (pins are not randomly assigned).
    const direct = new DustClient(b.address);
    cleanups.push(() => direct.close());
    expect(await direct.reportOutcome({ robotId: 'robot-7', episodeId: 'episode-7', success: true })).toEqual({
      modelName: 'dust-tiny',
      modelVersion: 1,
      counted: false,
    });
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

    const { failures, resumed } = await runFleetThroughFailover(client, {
      drain: () => replicas[0]!.child.kill('SIGTERM'),
      kill: () => replicas[1]!.child.kill('SIGKILL'),
    });

    expect(failures).toEqual([]);
    expect(await replicas[0]!.exited).toBe(0);
    expect(await replicas[1]!.exited).toBe(null);
    // The sessions that were on the two lost replicas moved.
    expect(resumed.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
  });

  it('asks clients to reconnect after maxConnectionAgeSeconds, and the sessions in progress carry on', async () => {
    const replica = await startTestServer({ maxConnectionAgeSeconds: 0.5 });
    cleanups.push(() => replica.close());
    const client = new DustClient(replica.address);
    cleanups.push(() => client.close());
    const obs = await observation('robot-age', 'episode-age');
    const stream = client.stream();
    await stream.send(obs);

    // A plain channel to the same replica sees the GOAWAY: it leaves READY once its connection has aged out.
    const channel = replica.client.getChannel();
    const state = () => channel.getConnectivityState(true);
    const changed = (from: grpc.connectivityState, withinMs: number) =>
      new Promise<boolean>((resolve) => channel.watchConnectivityState(from, Date.now() + withinMs, (err) => resolve(!err)));
    await eventually(() => state() === grpc.connectivityState.READY, { what: 'the channel to connect', timeoutMs: 5_000 });
    const left = changed(grpc.connectivityState.READY, 3_000);
    let aged = false;
    void left.then(() => (aged = true));
    // The session goes on across its connection's age: no re-open, every request answered, until the plain
    // channel has seen the GOAWAY (or given up after 3 s) and for three requests after.
    for (let after = 0; after < 3;) {
      await stream.send(obs);
      if (aged) after++;
    }
    stream.end();
    expect(await left).toBe(true);
    expect(stream.resumed).toBe(0);
    expect((await client.predict(obs)).modelName).toBe('dust-tiny');
  });
});
