/**
 * A fleet as it runs in production, in containers: three dust-serve replicas (the repository's image) on a
 * user-defined Docker network behind HAProxy (deploy/lb/haproxy.cfg in the dust-serve-lb image), and a robot fleet
 * on Predict and StreamPredict through HAProxy's one address with the retrying DustClient. One replica is drained
 * (SIGTERM, as `docker stop` and Kubernetes do) and another killed (SIGKILL) while the robots run: no robot request
 * may fail, the drained replica exits 0, and HAProxy's gRPC health check takes both out of the pool.
 *
 * Needs a Docker daemon, the base images of deploy/docker/build-base.sh and the HAProxy image of
 * deploy/docker/build-fleet-images.sh; `bash .ci/run` provides all and sets DUST_CONTAINER_TESTS=1. Without that
 * variable the test is reported as skipped, with the reason. The test removes its containers, network and image.
 */
import path from 'node:path';
import { GenericContainer, getContainerRuntimeClient, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import { DustClient } from '../src/client/index.js';
import { runFleetThroughFailover, until } from './support/fleet.js';
import { allReplicasUp, haproxyServers } from './support/haproxy.js';

const ENABLED = process.env.DUST_CONTAINER_TESTS === '1';
const SKIP_REASON =
  'container fleet test: DUST_CONTAINER_TESTS is not 1; it needs a Docker daemon, the base images ' +
  '(deploy/docker/build-base.sh) and the HAProxy image (deploy/docker/build-fleet-images.sh); bash .ci/run provides them and sets the variable';

const CONTEXT = path.resolve('.');
const IMAGE = `dust-serve-fleet-test:${process.pid}-${Date.now()}`;
const LB_IMAGE = 'dust-serve-lb:haproxy';
const GRPC_PORT = 50051;
const STATS_PORT = 8404;
const REPLICAS = 3;
/** A cold image build takes about a minute here (BuildKit's cache makes a rebuild seconds); the fleet under a minute. */
const TEST_TIMEOUT_MS = 8 * 60_000;

describe('a fleet of containers behind HAProxy', () => {
  let network: StartedNetwork | undefined;
  const containers: StartedTestContainer[] = [];
  let imageBuilt = false;

  afterAll(async () => {
    if (!ENABLED) return;
    const docker = (await getContainerRuntimeClient()).container.dockerode;
    // Forced: after a failed assertion containers may still run.
    await Promise.all(containers.map((c) => docker.getContainer(c.getId()).remove({ force: true, v: true }).catch(() => {})));
    await network?.stop().catch(() => {});
    if (imageBuilt) await docker.getImage(IMAGE).remove({ force: true }).catch(() => {});
  });

  it('loses no robot request while one replica drains (SIGTERM) and another is killed (SIGKILL)', async (ctx) => {
    if (!ENABLED) {
      console.warn(`skipped: ${SKIP_REASON}`); // the default reporter does not print skip notes
      ctx.skip(SKIP_REASON);
    }
    const runtime = await getContainerRuntimeClient();
    const docker = runtime.container.dockerode;
    await docker
      .getImage(LB_IMAGE)
      .inspect()
      .catch((err: unknown) => {
        throw new Error(`image ${LB_IMAGE} missing: run deploy/docker/build-fleet-images.sh`, { cause: err });
      });

    await GenericContainer.fromDockerfile(CONTEXT)
      .withBuildkit()
      .build(IMAGE, { deleteOnExit: false })
      .catch((err: unknown) => {
        throw new Error('building the image failed; for the build log rerun with DEBUG=testcontainers:build, or run docker build .', { cause: err });
      });
    imageBuilt = true;
    network = await new Network().start();

    const replicas = await Promise.all(
      Array.from({ length: REPLICAS }, async (_, i) => {
        // A builder per replica: its with* methods change the builder, and each replica has its own alias.
        const started = await new GenericContainer(IMAGE)
          .withNetwork(network!)
          .withNetworkAliases(`replica-${i + 1}`)
          .withEnvironment({ DUST_THREADS: '1', DUST_WARMUP: 'false', DUST_SHUTDOWN_GRACE_SECONDS: '5' })
          // No shell in the image for testcontainers' port probe: the server's own line says it listens.
          .withWaitStrategy(Wait.forLogMessage(/"msg":"dust-serve listening"/))
          .withStartupTimeout(120_000)
          .start();
        containers.push(started);
        return started;
      }),
    );
    const lb = await new GenericContainer(LB_IMAGE)
      .withNetwork(network)
      .withCopyFilesToContainer([{ source: path.resolve('deploy/lb/haproxy.cfg'), target: '/usr/local/etc/haproxy/haproxy.cfg' }])
      .withEnvironment(Object.fromEntries(Array.from({ length: REPLICAS }, (_, i) => [`DUST_REPLICA_${i + 1}`, `replica-${i + 1}:${GRPC_PORT}`])))
      .withExposedPorts(GRPC_PORT, STATS_PORT)
      .withWaitStrategy(Wait.forHttp('/stats', STATS_PORT))
      .start();
    containers.push(lb);
    const stats = `http://${lb.getHost()}:${lb.getMappedPort(STATS_PORT)}`;
    expect(await allReplicasUp(stats, 30_000)).toEqual({ r1: 'UP L7OK', r2: 'UP L7OK', r3: 'UP L7OK' });

    const client = new DustClient(`${lb.getHost()}:${lb.getMappedPort(GRPC_PORT)}`);
    const signal = (c: StartedTestContainer, s: string) => docker.getContainer(c.getId()).kill({ signal: s });
    try {
      const { failures, served } = await runFleetThroughFailover(client, {
        drain: () => signal(replicas[0]!, 'SIGTERM'),
        kill: () => signal(replicas[1]!, 'SIGKILL'),
      });
      expect(failures).toEqual([]);
      expect(served).toBeGreaterThan(0);
    } finally {
      client.close();
    }

    const state = async (c: StartedTestContainer) => (await docker.getContainer(c.getId()).inspect()).State;
    await until('the drained replica to exit', async () => !(await state(replicas[0]!)).Running, 30_000);
    expect((await state(replicas[0]!)).ExitCode).toBe(0);
    expect((await state(replicas[1]!)).ExitCode).toBe(137);
    const view = await haproxyServers(stats);
    expect(view.r1).toMatch(/^DOWN/);
    expect(view.r2).toMatch(/^DOWN/);
    expect(view.r3).toBe('UP L7OK');
  }, TEST_TIMEOUT_MS);
});
