/**
 * dust_requests_total and dust_inflight_requests under calls that end abnormally, on the real server: a call
 * reset before its request counts as CANCELLED, a call that ends its input without a request gets (and counts
 * as) INVALID_ARGUMENT, as does a unary call with two, never UNIMPLEMENTED; streams ended by a full queue leave nothing in flight.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_PATHS } from './support/hostile/raw-calls.js';
import { grpcMessage } from './support/hostile/raw-h2.js';
import { loadProtos } from '../src/api/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { freePort, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { parseExposition, type Sample } from './support/prometheus.js';

const PREDICT = POLICY_PATHS.predict;
const STREAM_PREDICT = POLICY_PATHS.streamPredict;

/** A request as a gRPC length-prefixed message. */
function framed(req: PredictRequest): Buffer {
  return grpcMessage(loadProtos().policy.PolicyService.service.StreamPredict.requestSerialize(req));
}

/**
 * A raw StreamPredict that writes `first` requests at once, and `after` more once the server has ended the
 * stream with its status (the client's side stays open until it closes it), then closes the connection.
 * Resolves with the grpc-status.
 */
function floodPastStatus(port: number, message: Buffer, first: number, after: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const req = session.request({ ':method': 'POST', ':path': STREAM_PREDICT, 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    req.on('response', (h) => (status ??= h['grpc-status'] as string | undefined));
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    req.on('trailers', (h) => {
      status ??= h['grpc-status'] as string | undefined;
      for (let i = 0; i < after; i++) req.write(message);
      // Written, the late requests have reached the server before the connection's end does.
      req.write(Buffer.alloc(0), () => session.destroy());
    });
    req.on('close', () => resolve(status));
    session.on('close', () => resolve(status));
    for (let i = 0; i < first; i++) req.write(message);
  });
}

/**
 * One raw HTTP/2 call without a request message: ended at once ('empty'), or reset by the client once the
 * server has its headers ('reset'). Resolves with the grpc-status the server sent, if any.
 */
function messageless(port: number, how: 'empty' | 'reset'): Promise<string | undefined> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let status: string | undefined;
    const req = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: how === 'empty' });
    const record = (h: http2.IncomingHttpHeaders) => (status ??= h['grpc-status'] as string | undefined);
    req.on('response', record);
    req.on('trailers', record);
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    // Sent, the headers and then the reset arrive together, as a client that gives up at once sends them.
    if (how === 'reset') req.on('ready', () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.on('close', () => {
      session.close();
      resolve(status);
    });
  });
}

/** A raw unary Predict carrying two request messages; resolves with the grpc-status. */
function twoMessages(port: number, message: Buffer): Promise<string | undefined> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let status: string | undefined;
    const req = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers' });
    const record = (h: http2.IncomingHttpHeaders) => (status ??= h['grpc-status'] as string | undefined);
    req.on('response', record);
    req.on('trailers', record);
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    req.on('close', () => {
      session.close();
      resolve(status);
    });
    req.end(Buffer.concat([message, message]));
  });
}

/** Opens a stream, writes `n` requests at once and resolves with the status that ends it. */
function flood(t: TestServer, n: number, robot: string): Promise<grpc.StatusObject> {
  return validRequest({ robot_id: robot }).then(
    (req) =>
      new Promise((resolve) => {
        const call = t.client.StreamPredict();
        call.on('data', () => undefined);
        call.on('error', () => undefined);
        call.on('status', resolve);
        for (let i = 0; i < n; i++) call.write(req);
        call.end();
      }),
  );
}

let t: TestServer;
let metricsPort: number;
const statuses: { empty?: string; reset?: string; two?: string; floods: grpc.StatusObject[]; pastStatus?: string } = { floods: [] };
let samples: Sample[];

beforeAll(async () => {
  metricsPort = await freePort();
  t = await startTestServer({ metricsPort, maxQueue: 2, warmup: false });
  statuses.empty = await messageless(t.server.port, 'empty');
  statuses.reset = await messageless(t.server.port, 'reset');
  statuses.two = await twoMessages(t.server.port, framed(await validRequest({ robot_id: 'twice' })));
  statuses.floods = await Promise.all([flood(t, 24, 'flood-a'), flood(t, 24, 'flood-b'), flood(t, 24, 'flood-c')]);
  statuses.pastStatus = await floodPastStatus(t.server.port, framed(await validRequest({ robot_id: 'flood-d' })), 24, 8);
  // Closing the client closes its connection: nothing of it is left open when the gauge is read.
  t.client.close();
  // One scrape for every assertion: /metrics serves one rendering for up to a second.
  samples = parseExposition(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).samples;
});
afterAll(async () => {
  await t?.close();
});

const total = (labels: Record<string, string>) =>
  samples.filter((s) => s.name === 'dust_requests_total' && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);

describe('calls without a request message', () => {
  it('a call that ends without its request gets INVALID_ARGUMENT; a reset one gets nothing', () => {
    expect(statuses.empty).toBe(String(grpc.status.INVALID_ARGUMENT));
    expect(statuses.reset).toBeUndefined();
  });

  it('a unary call with two request messages gets INVALID_ARGUMENT', () => {
    expect(statuses.two).toBe(String(grpc.status.INVALID_ARGUMENT));
  });

  it('are counted under their real code, never UNIMPLEMENTED', () => {
    expect(total({ code: 'UNIMPLEMENTED' })).toBe(0);
    expect(total({ method: 'Predict', code: 'INVALID_ARGUMENT' })).toBe(2);
    // The reset call, and the other message of the call that sent two (unanswered after the failing one).
    expect(total({ method: 'Predict', code: 'CANCELLED' })).toBe(2);
  });
});

describe('streams ended by a full queue', () => {
  it('end with RESOURCE_EXHAUSTED and leave nothing in flight once their connection is closed', () => {
    expect(statuses.floods.some((s) => s.code === grpc.status.RESOURCE_EXHAUSTED)).toBe(true);
    expect(statuses.pastStatus).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
    expect(total({ method: 'StreamPredict', code: 'RESOURCE_EXHAUSTED' })).toBeGreaterThan(0);
    for (const method of ['Predict', 'StreamPredict']) {
      expect(samples.find((s) => s.name === 'dust_inflight_requests' && s.labels.method === method)?.value ?? 0, method).toBe(0);
    }
  });
});
