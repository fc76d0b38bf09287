/**
 * Integration-test harness: the real server on a loopback port with a real model package, and a raw
 * grpc-js client made from the same protos.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';
import { loadProtos, startServer, type RunningServer, type ServerDeps } from '../../src/api/index.js';
import { compileServeOptions, type ServeOptionsInput } from '../../src/config/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import type { PolicyServiceClient } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import { silentLogger, type Logger } from '../../src/telemetry/index.js';

/** A TCP port free on loopback right now (for servers that cannot take port 0, e.g. the metrics endpoint). */
export { freePort } from './ports.js';

/** `n` distinct TCP ports free on loopback right now: all are bound at once, then released. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The repository the integration tests serve; DUST_TEST_REPOSITORY points them at another copy of dust-tiny. */
export const TEST_REPOSITORY = path.resolve(process.env.DUST_TEST_REPOSITORY ?? 'models');
export const TINY_DIR = path.join(TEST_REPOSITORY, 'dust-tiny/1');

export interface TestServer {
  readonly server: RunningServer;
  readonly client: PolicyServiceClient;
  readonly address: string;
  close(): Promise<void>;
}

export interface TestServerExtras extends ServerDeps {
  readonly log?: Logger;
  /** How the test client connects (plaintext by default). */
  readonly credentials?: grpc.ChannelCredentials;
  /** Client channel options (e.g. grpc.ssl_target_name_override). */
  readonly channelOptions?: grpc.ChannelOptions;
}

export async function startTestServer(options: ServeOptionsInput = {}, extras: TestServerExtras = {}): Promise<TestServer> {
  const compiled = compileServeOptions({
    host: '127.0.0.1',
    port: 0,
    metricsPort: 0,
    modelRepository: TEST_REPOSITORY,
    threads: 1,
    shutdownGraceSeconds: 2,
    experimentDb: ':memory:',
    ...options,
  });
  const server = await startServer(compiled, extras.log ?? silentLogger, { tracing: extras.tracing });
  const address = `127.0.0.1:${server.port}`;
  const { policy } = loadProtos();
  const client = new policy.PolicyService(
    address,
    extras.credentials ?? grpc.credentials.createInsecure(),
    extras.channelOptions,
  ) as unknown as PolicyServiceClient;
  return {
    server,
    client,
    address,
    async close() {
      client.close();
      await server.shutdown('test over');
    },
  };
}

/**
 * A model repository in a temp dir with copies of the given packages (tests may corrupt them). Each copy's
 * manifest names the place it was copied to, as a package must.
 */
export function tempRepository(packages: Array<{ from: string; name: string; version: number }>): { root: string; remove(): void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dust-repo-'));
  for (const p of packages) {
    const dir = path.join(root, p.name, String(p.version));
    cpSync(p.from, dir, { recursive: true });
    const manifestPath = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, name: p.name, version: p.version }, null, 2));
  }
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** A solid-colour JPEG of the given size. */
export async function jpeg(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .jpeg()
    .toBuffer();
}

export async function validRequest(over: Partial<PredictRequest> & { stateDim?: number } = {}): Promise<PredictRequest> {
  const { stateDim = 8, ...rest } = over;
  return {
    robot_id: 'robot-1',
    embodiment: 'franka_fr3',
    images: [
      { camera: 'front', encoding: 'IMAGE_ENCODING_JPEG', data: await jpeg(64, 64, [200, 40, 40]) },
      { camera: 'wrist', encoding: 'IMAGE_ENCODING_JPEG', data: await jpeg(64, 64, [40, 40, 200]) },
    ],
    state: Array.from({ length: stateDim }, (_, i) => 0.1 * i),
    instruction: 'push the red block left',
    ...rest,
  };
}

export function predict(
  client: PolicyServiceClient,
  req: PredictRequest,
  deadlineMs = 30_000,
  metadata = new grpc.Metadata(),
): Promise<PredictResponse__Output> {
  return new Promise((resolve, reject) =>
    client.Predict(req, metadata, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!))),
  );
}

/** Resolves with the gRPC error of a call that must fail (rejects if it succeeds). */
export async function predictError(
  client: PolicyServiceClient,
  req: PredictRequest,
  deadlineMs = 30_000,
  metadata = new grpc.Metadata(),
): Promise<grpc.ServiceError> {
  try {
    await predict(client, req, deadlineMs, metadata);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('the call succeeded but was expected to fail');
}

export function floats(t: { data: Buffer } | null | undefined): Float32Array {
  if (!t) throw new Error('tensor missing');
  const out = new Float32Array(t.data.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = t.data.readFloatLE(i * 4);
  return out;
}
