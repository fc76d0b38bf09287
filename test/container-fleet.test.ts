/**
 * A fleet as it runs in production, in containers: PostgreSQL (the dust-serve-postgres image) holding the
 * experiment, three dust-serve replicas (the repository's image) sharing it, on a user-defined Docker network
 * behind HAProxy (deploy/lb/haproxy.cfg in the dust-serve-lb image), with credentials from a tokens file and
 * dust-tiny as versions 1 and 2 from a repository mounted into the replicas. An operator splits the traffic
 * 50/50 through HAProxy; a robot fleet on Predict and StreamPredict runs through HAProxy's one address with the
 * retrying DustClient while one replica is drained (SIGTERM, as `docker stop` and Kubernetes do) and another
 * killed (SIGKILL): no robot request may fail, the drained replica exits 0, HAProxy's gRPC health check takes both
 * out of the pool, and the experiment's counts (requests, robots, episodes, outcomes and successes per version)
 * equal what the robots were served and reported.
 *
 * Needs a Docker daemon, the base images of deploy/docker/build-base.sh and the HAProxy and PostgreSQL images of
 * deploy/docker/build-fleet-images.sh; `bash .ci/run` provides all and sets DUST_CONTAINER_TESTS=1. Without that
 * variable the test is reported as skipped, with the reason; with CI=true it fails (test/support/requires.ts).
 * The test removes its containers, network and image.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GenericContainer, getContainerRuntimeClient, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DustClient } from '@dust-serve/client';
import { countsOf, reportOutcomes, runFleetThroughFailover, splitEvenly } from './support/fleet.js';
import { eventually } from './support/eventually.js';
import { allReplicasUp, haproxyServers } from './support/haproxy.js';
import { WITH_DOCKER } from './support/tools.js';
import { MODEL, versionsRepository } from './support/versions.js';

const CONTEXT = path.resolve('.');
const IMAGE = `dust-serve-fleet-test:${process.pid}-${Date.now()}`;
const LB_IMAGE = 'dust-serve-lb:haproxy';
const PG_IMAGE = 'dust-serve-postgres:15';
const PG_PASSWORD = 'fleet-test-postgres-password';
const ROBOT_TOKEN = 'fleet-test-robot-token-0123456789';
const ADMIN_TOKEN = 'fleet-test-admin-token-0123456789';
const GRPC_PORT = 50051;
const STATS_PORT = 8404;
const REPLICAS = 3;
/** Everything under `dir` readable by the replicas' user (uid 10001), as a mounted volume must be. */
function readableByAll(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir)) {
    const p = path.join(dir, entry);
    if (statSync(p).isDirectory()) readableByAll(p);
    else chmodSync(p, 0o644);
  }
}

/** A cold image build takes about a minute here (BuildKit's cache makes a rebuild seconds); the fleet under a minute. */
const TEST_TIMEOUT_MS = 8 * 60_000;

WITH_DOCKER.describe('a fleet of containers behind HAProxy', () => {
  let network: StartedNetwork | undefined;
  const containers: StartedTestContainer[] = [];
  let imageBuilt = false;
  let repo: ReturnType<typeof versionsRepository>;
  let secrets: string;

  beforeAll(() => {
    repo = versionsRepository([1, 2]);
    secrets = mkdtempSync(path.join(os.tmpdir(), 'dust-fleet-secrets-'));
  });

  afterAll(async () => {
    repo?.remove();
    if (secrets) rmSync(secrets, { recursive: true, force: true });
    const docker = (await getContainerRuntimeClient()).container.dockerode;
    // Forced: after a failed assertion containers may still run.
    await Promise.all(
      containers.map((c) =>
        docker
          .getContainer(c.getId())
          .remove({ force: true, v: true })
          .catch(() => {}),
      ),
    );
    await network?.stop().catch(() => {});
    if (imageBuilt)
      await docker
        .getImage(IMAGE)
        .remove({ force: true })
        .catch(() => {});
  });

  it(
    'loses no robot request while one replica drains (SIGTERM) and another is killed (SIGKILL); the shared experiment counts exactly what the robots got',
    async () => {
      const runtime = await getContainerRuntimeClient();
      const docker = runtime.container.dockerode;
      for (const image of [LB_IMAGE, PG_IMAGE]) {
        await docker
          .getImage(image)
          .inspect()
          .catch((err: unknown) => {
            throw new Error(`image ${image} missing: run deploy/docker/build-fleet-images.sh`, { cause: err });
          });
      }

      await GenericContainer.fromDockerfile(CONTEXT)
        .withBuildkit()
        .build(IMAGE, { deleteOnExit: false })
        .catch((err: unknown) => {
          throw new Error('building the image failed; for the build log rerun with DEBUG=testcontainers:build, or run docker build .', { cause: err });
        });
      imageBuilt = true;
      network = await new Network().start();
      const postgres = await new GenericContainer(PG_IMAGE)
        .withNetwork(network)
        .withNetworkAliases('postgres')
        .withEnvironment({ POSTGRES_PASSWORD: PG_PASSWORD })
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/))
        .withStartupTimeout(60_000)
        .start();
      containers.push(postgres);

      readableByAll(repo.root);
      const tokens = path.join(secrets, 'tokens.json');
      writeFileSync(
        tokens,
        JSON.stringify([
          { token: ROBOT_TOKEN, role: 'robot', name: 'fleet' },
          { token: ADMIN_TOKEN, role: 'admin', name: 'operator' },
        ]),
      );
      readableByAll(secrets);

      const replicas = await Promise.all(
        Array.from({ length: REPLICAS }, async (_, i) => {
          // A builder per replica: its with* methods change the builder, and each replica has its own alias.
          const started = await new GenericContainer(IMAGE)
            .withNetwork(network!)
            .withNetworkAliases(`replica-${i + 1}`)
            .withBindMounts([
              { source: repo.root, target: '/models', mode: 'ro' },
              { source: secrets, target: '/etc/dust-serve', mode: 'ro' },
            ])
            .withEnvironment({
              DUST_THREADS: '1',
              DUST_WARMUP: 'false',
              DUST_SHUTDOWN_GRACE_SECONDS: '5',
              DUST_MODEL_REPOSITORY: '/models',
              DUST_TOKENS_FILE: '/etc/dust-serve/tokens.json',
              DUST_EXPERIMENT_STORE: 'postgres',
              // The URL carries no secret; the password comes from libpq's variable, as a Kubernetes Secret sets it.
              DUST_POSTGRES_URL: 'postgres://dust@postgres:5432/dust',
              PGPASSWORD: PG_PASSWORD,
              // Answers wait for their counts however slow this shared machine is: the test checks exact counts.
              DUST_EXPERIMENT_COUNT_WAIT_MS: '60000',
            })
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

      const address = `${lb.getHost()}:${lb.getMappedPort(GRPC_PORT)}`;
      const admin = new DustClient(address, { token: ADMIN_TOKEN });
      const client = new DustClient(address, { token: ROBOT_TOKEN });
      const signal = (c: StartedTestContainer, s: string) => docker.getContainer(c.getId()).kill({ signal: s });
      try {
        // The operator's split, through HAProxy to one replica; the others follow it (LISTEN/NOTIFY).
        const experimentId = await splitEvenly(admin, client, MODEL, REPLICAS, 'container-fleet');
        const report = await runFleetThroughFailover(client, {
          drain: () => signal(replicas[0]!, 'SIGTERM'),
          kill: () => signal(replicas[1]!, 'SIGKILL'),
        });
        expect(report.failures).toEqual([]);
        expect([...report.servedByVersion.keys()].sort()).toEqual([1, 2]);
        // Every robot reports its outcome through HAProxy, to whichever replica is left; any replica's
        // GetExperiment then holds what the robots got and reported.
        const expected = await reportOutcomes(client, MODEL, report);
        const experiment = await admin.getExperiment(MODEL);
        expect(experiment.experimentId).toBe(experimentId);
        expect(countsOf(experiment)).toEqual(expected);
      } finally {
        client.close();
        admin.close();
      }

      const state = async (c: StartedTestContainer) => (await docker.getContainer(c.getId()).inspect()).State;
      await eventually(async () => !(await state(replicas[0]!)).Running, { what: 'the drained replica to exit', timeoutMs: 30_000 });
      expect((await state(replicas[0]!)).ExitCode).toBe(0);
      expect((await state(replicas[1]!)).ExitCode).toBe(137);
      const view = await haproxyServers(stats);
      expect(view.r1).toMatch(/^DOWN/);
      expect(view.r2).toMatch(/^DOWN/);
      expect(view.r3).toBe('UP L7OK');
    },
    TEST_TIMEOUT_MS,
  );
});
