/**
 * A test server with known traffic behind its /metrics port, for the tests that read the metrics (test/metrics.test.ts)
 * and the ones that have Prometheus scrape them (test/prometheus.test.ts): a repository with dust-tiny as version 1
 * and a broken version 2 (one model load failure), two unary requests (one with an episode seen twice: world-model
 * surprise; one with a 1 ms budget: missed), a stream of two, and one invalid request.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { PredictResponse__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import type { Manifest } from '../../src/model/index.js';
import { freePort, predict, predictError, startTestServer, tempRepository, TINY_DIR, validRequest, type TestServer } from './harness.js';

function stream(t: TestServer, requests: Awaited<ReturnType<typeof validRequest>>[]): Promise<PredictResponse__Output[]> {
  return new Promise((resolve, reject) => {
    const out: PredictResponse__Output[] = [];
    const call = t.client.StreamPredict();
    call.on('data', (r: PredictResponse__Output) => out.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    for (const r of requests) call.write(r);
    call.end();
  });
}

export interface ServerWithTraffic {
  readonly t: TestServer;
  readonly metricsPort: number;
  /** The responses of the four served requests. */
  readonly served: readonly PredictResponse__Output[];
  close(): Promise<void>;
}

export async function serveWithTraffic(): Promise<ServerWithTraffic> {
  const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
  const repo = tempRepository([
    { from: TINY_DIR, name: 'dust-tiny', version: 1 },
    { from: TINY_DIR, name: 'dust-tiny', version: 2 },
  ]);
  writeFileSync(path.join(repo.root, 'dust-tiny/2/manifest.json'), JSON.stringify({ ...manifest, version: 2 }));
  writeFileSync(path.join(repo.root, 'dust-tiny/2/vlm.onnx'), 'not a graph');
  const metricsPort = await freePort();
  const t = await startTestServer({ modelRepository: repo.root, metricsPort });
  const close = async () => {
    await t.close();
    repo.remove();
  };
  try {
    const served: PredictResponse__Output[] = [];
    served.push(await predict(t.client, await validRequest({ episode_id: 'e1' })));
    served.push(await predict(t.client, await validRequest({ episode_id: 'e1', sampling: { latency_budget_ms: 1 } })));
    served.push(...(await stream(t, [await validRequest({ robot_id: 'streamer' }), await validRequest({ robot_id: 'streamer' })])));
    const err = await predictError(t.client, await validRequest({ state: [1, 2] }));
    if (err.code !== grpc.status.INVALID_ARGUMENT) throw new Error(`the invalid request got ${grpc.status[err.code]}, not INVALID_ARGUMENT`, { cause: err });
    return { t, metricsPort, served, close };
  } catch (err) {
    await close();
    throw err;
  }
}
