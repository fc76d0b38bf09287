/**
 * The fair share of a contended queue on the real server, with the rate limit off (the default): one robot
 * flooding a model's queue is refused with RESOURCE_EXHAUSTED while a well-behaved robot sending at the same
 * time is never refused; with a tokens file the share belongs to the credential, whatever robot_id it claims.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { predict, startTestServer, validRequest, type TestServer } from './support/harness.js';

const MAX_QUEUE = 8;
const FLOOD_CONCURRENCY = 24;
const POLITE_REQUESTS = 12;

function call(t: TestServer, req: PredictRequest, metadata: grpc.Metadata): Promise<grpc.status> {
  return new Promise((resolve) => t.client.Predict(req, metadata, { deadline: Date.now() + 60_000 }, (err) => resolve(err ? err.code : grpc.status.OK)));
}

/**
 * `flood` keeps FLOOD_CONCURRENCY requests outstanding (each answer sends the next) while `polite` sends its
 * requests one after the other; resolves with the codes each got, once the polite robot is done and the
 * flood's last answers are in.
 */
async function contest(t: TestServer, flood: { req: PredictRequest; md: grpc.Metadata }, polite: { req: PredictRequest; md: grpc.Metadata }) {
  const floodCodes: grpc.status[] = [];
  const politeCodes: grpc.status[] = [];
  let politeDone = false;
  const floodLoop = async () => {
    while (!politeDone) floodCodes.push(await call(t, flood.req, flood.md));
  };
  const floods = Array.from({ length: FLOOD_CONCURRENCY }, floodLoop);
  for (let i = 0; i < POLITE_REQUESTS; i++) politeCodes.push(await call(t, polite.req, polite.md));
  politeDone = true;
  await Promise.all(floods);
  return { floodCodes, politeCodes };
}

describe('without a tokens file: the share belongs to the robot_id', () => {
  let t: TestServer;
  afterAll(async () => {
    await t?.close();
  });

  it('a flooding robot gets RESOURCE_EXHAUSTED; a concurrent polite robot sees no error', async () => {
    t = await startTestServer({ maxQueue: MAX_QUEUE, warmup: false });
    const { floodCodes, politeCodes } = await contest(
      t,
      { req: await validRequest({ robot_id: 'flooder' }), md: new grpc.Metadata() },
      { req: await validRequest({ robot_id: 'polite' }), md: new grpc.Metadata() },
    );
    expect(politeCodes).toEqual(Array(POLITE_REQUESTS).fill(grpc.status.OK));
    expect(floodCodes).toContain(grpc.status.RESOURCE_EXHAUSTED);
    expect(floodCodes).toContain(grpc.status.OK);
    expect(new Set(floodCodes)).toEqual(new Set([grpc.status.OK, grpc.status.RESOURCE_EXHAUSTED]));
    // Once the flood is over, the flooder is served again.
    await predict(t.client, await validRequest({ robot_id: 'flooder' }));
  });
});

describe('with a tokens file: the share belongs to the credential', () => {
  const FLOODER = 'flooding-robot-token-6b2a01';
  const POLITE = 'polite-robot-token-0d93e7';
  let dir: string;
  let t: TestServer;
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a flooder rotating robot_ids under one token is still held to one share', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dust-fair-'));
    const tokensFile = path.join(dir, 'tokens.json');
    writeFileSync(
      tokensFile,
      JSON.stringify([
        { token: FLOODER, role: 'robot', name: 'flooder' },
        { token: POLITE, role: 'robot', name: 'polite' },
      ]),
    );
    t = await startTestServer({ maxQueue: MAX_QUEUE, warmup: false, tokensFile });
    const md = (token: string) => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${token}`);
      return m;
    };
    // Each of the flood's requests claims another robot_id: only the credential ties them together.
    let n = 0;
    const rotating = await validRequest();
    const floodReq = new Proxy(rotating, { get: (target, key) => (key === 'robot_id' ? `rotating-${n++}` : target[key as keyof PredictRequest]) });
    const { floodCodes, politeCodes } = await contest(
      t,
      { req: floodReq, md: md(FLOODER) },
      { req: await validRequest({ robot_id: 'polite' }), md: md(POLITE) },
    );
    expect(politeCodes).toEqual(Array(POLITE_REQUESTS).fill(grpc.status.OK));
    expect(floodCodes).toContain(grpc.status.RESOURCE_EXHAUSTED);
  });
});
