/**
 * The container image as an operator runs it: built from the repository's Dockerfile, started, a real Predict for
 * the shipped model (models/dust-tiny/1, baked into the image), health SERVING (over gRPC, and Docker's own
 * HEALTHCHECK reports healthy), then `docker stop` (the image's STOPSIGNAL, SIGTERM) drains and exits 0.
 *
 * Needs a Docker daemon and the base images of deploy/docker/build-base.sh; `bash .ci/run` provides both and sets
 * DUST_CONTAINER_TESTS=1. Without that variable the test is reported as skipped, with the reason; with CI=true it
 * fails (test/support/requires.ts). Testcontainers'
 * reaper image cannot be pulled here (TESTCONTAINERS_RYUK_DISABLED=true), so the test removes its container and
 * image itself. The build uses BuildKit, whose layer cache outlives the image: a rerun rebuilds only what changed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { GenericContainer, getContainerRuntimeClient, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, expect, it } from 'vitest';
import { loadProtos } from '../src/api/index.js';
import type { PolicyServiceClient } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import { floats, predict, validRequest } from './support/harness.js';
import { WITH_DOCKER } from './support/tools.js';

const CONTEXT = path.resolve('.');
const GRPC_PORT = 50051;
const IMAGE = `dust-serve-test:${process.pid}-${Date.now()}`;
/** A cold build (npm ci in the build stage) takes about a minute here; the rest of the test a few seconds. */
const TEST_TIMEOUT_MS = 6 * 60_000;
/** The server's default shutdownGraceSeconds is 10; docker stop falls back to SIGKILL (exit 137) after this. */
const STOP_TIMEOUT_MS = 30_000;

WITH_DOCKER.describe('container image', () => {
  let container: StartedTestContainer | undefined;
  let imageBuilt = false;

  afterAll(async () => {
    // Forced: after a failed assertion the container may still be running.
    const docker = (await getContainerRuntimeClient()).container.dockerode;
    if (container)
      await docker
        .getContainer(container.getId())
        .remove({ force: true, v: true })
        .catch(() => {});
    if (imageBuilt)
      await docker
        .getImage(IMAGE)
        .remove({ force: true })
        .catch(() => {});
  });

  it(
    'serves the shipped model, reports SERVING, and drains on docker stop with exit 0',
    async () => {
      const manifest = JSON.parse(readFileSync(path.join(CONTEXT, 'models/dust-tiny/1/manifest.json'), 'utf8')) as {
        action: { horizon: number };
        embodiments: Record<string, { action_dim: number; state_dim: number }>;
      };

      const image = await GenericContainer.fromDockerfile(CONTEXT)
        .withBuildkit()
        .build(IMAGE, { deleteOnExit: false })
        .catch((err: unknown) => {
          // testcontainers keeps the build log to itself; say where to find it.
          throw new Error(
            `building the image failed; for the build log rerun with DEBUG=testcontainers:build, or run docker build . (base images: deploy/docker/build-base.sh)`,
            { cause: err },
          );
        });
      imageBuilt = true;
      const logLines: string[] = [];
      let partial = '';
      let logsEnded!: Promise<void>;
      container = await image
        .withExposedPorts(GRPC_PORT)
        .withEnvironment({ DUST_THREADS: '1' })
        .withLogConsumer((stream) => {
          stream.on('data', (chunk: Buffer | string) => {
            const parts = (partial + chunk.toString()).split('\n');
            partial = parts.pop()!;
            logLines.push(...parts);
          });
          logsEnded = new Promise((resolve) => stream.once('end', () => resolve()).once('close', () => resolve()));
        })
        // The runtime image has no shell, so testcontainers' port probe cannot run inside it: the server's own
        // log line (models load before the port opens) and Docker's HEALTHCHECK say when it is up.
        .withWaitStrategy(Wait.forAll([Wait.forLogMessage(/"msg":"dust-serve listening"/), Wait.forHealthCheck()]))
        .withStartupTimeout(90_000)
        .start();

      const address = `${container.getHost()}:${container.getMappedPort(GRPC_PORT)}`;
      const { policy } = loadProtos();
      const client = new policy.PolicyService(address, grpc.credentials.createInsecure()) as unknown as PolicyServiceClient;
      const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
      const health = new Health(address, grpc.credentials.createInsecure());
      try {
        const res = await predict(client, await validRequest({ sampling: { seed: '7' } }));
        const emb = manifest.embodiments.franka_fr3!;
        expect(res.model_name).toBe('dust-tiny');
        expect(res.model_version).toBe(1);
        expect(res.actions!.shape).toEqual([manifest.action.horizon, emb.action_dim]);
        const actions = floats(res.actions);
        expect(actions).toHaveLength(manifest.action.horizon * emb.action_dim);
        expect(actions.every(Number.isFinite)).toBe(true);

        const status = await new Promise<string>((resolve, reject) =>
          health.Check({ service: '' }, { deadline: Date.now() + 5_000 }, (err: grpc.ServiceError | null, r: { status: string }) =>
            err ? reject(err) : resolve(r.status),
          ),
        );
        expect(status).toBe('SERVING');
      } finally {
        client.close();
        health.close();
      }

      const runtime = await getContainerRuntimeClient();
      const handle = runtime.container.getById(container.getId());
      // docker stop sends the image's STOPSIGNAL; the 'draining' line below names the signal the server got.
      await container.stop({ timeout: STOP_TIMEOUT_MS, remove: false });
      const state = (await runtime.container.inspect(handle)).State;
      // The log stream ends once the container has exited; its last lines may arrive after stop() returns.
      await Promise.race([logsEnded, new Promise((r) => setTimeout(r, 5_000))]);
      if (partial) logLines.push(partial);
      expect(state.ExitCode, `container logs:\n${logLines.join('\n')}`).toBe(0);
      const msgs = logLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; reason?: string });
      expect(msgs.find((m) => m.msg === 'draining')?.reason).toBe('SIGTERM');
      expect(msgs.map((m) => m.msg)).toContain('server closed');
    },
    TEST_TIMEOUT_MS,
  );
});
