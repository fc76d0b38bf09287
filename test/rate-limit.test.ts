/**
 * The per-robot rate limit on the real server: a robot over its budget gets RESOURCE_EXHAUSTED at once with
 * the wait in the details and in the grpc-retry-pushback-ms trailer, other robots are unaffected, a stream
 * of that robot is refused too, and dust_rejected_total counts the refusals as rate_limited. With a tokens
 * file the budget belongs to the credential: a client cannot escape it by changing robot_id.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { freePort, predict, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { parseExposition } from './support/prometheus.js';

let t: TestServer;
let metricsPort: number;
beforeAll(async () => {
  metricsPort = await freePort();
  // Two requests at once, then one every 10 s: the third of three concurrent requests is over the limit.
  t = await startTestServer({ robotRateLimit: 0.1, robotRateBurst: 2, metricsPort });
});
afterAll(async () => {
  await t?.close();
});

function call(req: PredictRequest): Promise<grpc.ServiceError | undefined> {
  return new Promise((resolve) => t.client.Predict(req, { deadline: Date.now() + 30_000 }, (err) => resolve(err ?? undefined)));
}

describe('per-robot rate limit', () => {
  it('refuses the request over the burst with RESOURCE_EXHAUSTED and a retry delay; other robots pass', async () => {
    const greedy = await validRequest({ robot_id: 'greedy' });
    const results = await Promise.all([call(greedy), call(greedy), call(greedy)]);
    const refused = results.filter((err) => err !== undefined);
    expect(refused).toHaveLength(1);
    const err = refused[0];
    expect(err!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err!.details).toMatch(/robot "greedy" is over its rate limit of 0.1 requests\/s \(burst 2\); retry in \d+ ms/);
    const pushback = Number(err!.metadata.get('grpc-retry-pushback-ms')[0]);
    expect(pushback).toBeGreaterThan(9_000);
    expect(pushback).toBeLessThanOrEqual(10_000);

    await predict(t.client, await validRequest({ robot_id: 'polite' }));
  });

  it('refuses a stream message of a robot over its limit, ending the stream', async () => {
    const greedy = await validRequest({ robot_id: 'greedy' });
    const status = await new Promise<grpc.ServiceError>((resolve, reject) => {
      const s = t.client.StreamPredict();
      s.on('data', () => reject(new Error('a response arrived for a robot over its limit')));
      s.on('error', resolve);
      s.write(greedy);
    });
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('counts the refusals as rate_limited', async () => {
    const { samples } = parseExposition(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
    expect(samples.find((s) => s.name === 'dust_rejected_total' && s.labels.reason === 'rate_limited')?.value).toBe(2);
    const exhausted = samples.filter((s) => s.name === 'dust_requests_total' && s.labels.code === 'RESOURCE_EXHAUSTED');
    expect(exhausted.reduce((n, s) => n + s.value, 0)).toBe(2);
  });
});

describe('per-credential rate limit (tokens file)', () => {
  const FIRST = 'first-robot-token-58c1e0';
  const SECOND = 'second-robot-token-93ad27';
  let dir: string;
  let authed: TestServer;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dust-rate-'));
    const tokensFile = path.join(dir, 'tokens.json');
    writeFileSync(
      tokensFile,
      JSON.stringify([
        { token: FIRST, role: 'robot', name: 'arm-1' },
        { token: SECOND, role: 'robot', name: 'arm-2' },
      ]),
    );
    authed = await startTestServer({ robotRateLimit: 0.1, robotRateBurst: 2, tokensFile });
  });
  afterAll(async () => {
    await authed?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function callWith(token: string, req: PredictRequest): Promise<grpc.ServiceError | undefined> {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    return new Promise((resolve) => authed.client.Predict(req, md, { deadline: Date.now() + 30_000 }, (err) => resolve(err ?? undefined)));
  }

  it('counts every robot_id sent with one token against that token, and other tokens against their own', async () => {
    const results = await Promise.all(['a', 'b', 'c'].map(async (robot) => callWith(FIRST, await validRequest({ robot_id: robot }))));
    const refused = results.filter((err) => err !== undefined);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused[0]!.details).toMatch(/^caller "arm-1" is over its rate limit/);
    expect(refused[0]!.details).not.toContain(FIRST);
    // Same robot_ids, another credential: a budget of its own.
    expect(await callWith(SECOND, await validRequest({ robot_id: 'a' }))).toBeUndefined();
  });
});
