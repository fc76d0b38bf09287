/**
 * Regression tests for the hostile requests found by fuzzing (fuzz.test.ts): one hostile request must never crash, hang or bloat the server.
 * Each test sends what a hostile client sent, checks the answer, and checks that the server still answers a
 * seeded good request exactly as before.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/model/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { lengthDelimited, repeat, varintField } from './support/hostile/protobuf-writer.js';
import { POLICY_PATHS, rawStream, rawUnary } from './support/hostile/raw-calls.js';
import { policyCodec } from './support/policy-codec.js';
import { floats, predict, predictError, startTestServer, TINY_DIR, validRequest, type TestServer } from './support/harness.js';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
const [embName, emb] = Object.entries(manifest.embodiments)[0];
const request = (over: Partial<PredictRequest> = {}) => validRequest({ embodiment: embName, stateDim: emb.state_dim, ...over });
const codec = policyCodec();
/** Long enough to show the server waits for nothing; far below any legitimate call's need on dust-tiny. */
const DEADLINE_MS = 10_000;
const MAX_MESSAGE_BYTES = 1024 * 1024;

let t: TestServer;
let reference: Float32Array;
const good = () => request({ robot_id: 'bystander', sampling: { seed: '11' } });

beforeAll(async () => {
  t = await startTestServer({ maxMessageBytes: MAX_MESSAGE_BYTES });
  reference = floats((await predict(t.client, await good())).actions);
});
afterAll(async () => {
  await t?.close();
});

/** The server is up and gives the seeded good request the same actions as at the start. */
async function expectStillServing(): Promise<void> {
  const a = floats((await predict(t.client, await good(), DEADLINE_MS)).actions);
  expect(a).toHaveLength(reference.length);
  expect(Math.max(...a.map((v, i) => Math.abs(v - reference[i])))).toBeLessThanOrEqual(1e-5);
}

/** A valid request's bytes with raw fields appended (proto3: the last occurrence of a scalar field wins). */
async function withRawFields(...fields: Buffer[]): Promise<Buffer> {
  return Buffer.concat([codec.serialize(await request()), ...fields]);
}

function expectCode(got: grpc.status, want: grpc.status): void {
  expect(grpc.status[got]).toBe(grpc.status[want]);
}

describe('finding 1: request_id characters that gRPC metadata does not allow', () => {
  const badIds: Array<[string, Buffer]> = [
    ['a newline', Buffer.from('abc\ndef')],
    ['an emoji', Buffer.from('robot-🤖')],
    ['invalid UTF-8', Buffer.from([0x61, 0xff, 0xfe, 0x62])],
    ['a NUL byte', Buffer.from('a\u0000b')],
  ];

  it.each(badIds)('%s: an error reply is INVALID_ARGUMENT naming request_id, and the server keeps serving', async (_, id) => {
    // Unknown embodiment: the reply is an error after the asynchronous path.
    const bytes = await withRawFields(lengthDelimited(1, id), lengthDelimited(5, 'hexapod'));
    const out = await rawUnary(t.client, POLICY_PATHS.predict, bytes, DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/request_id/);
    expect(out.metadata?.get('x-request-id') ?? []).toEqual([]);
    await expectStillServing();
  });

  it.each(badIds)('%s on the synchronous path (unknown model): INVALID_ARGUMENT, not UNKNOWN', async (_, id) => {
    const bytes = await withRawFields(lengthDelimited(1, id), lengthDelimited(4, 'no-such-model'));
    const out = await rawUnary(t.client, POLICY_PATHS.predict, bytes, DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/request_id/);
    await expectStillServing();
  });

  it.each(badIds)('%s in StreamPredict: the stream ends INVALID_ARGUMENT, the server keeps serving', async (_, id) => {
    const bytes = await withRawFields(lengthDelimited(1, id), lengthDelimited(5, 'hexapod'));
    const out = await rawStream(t.client, POLICY_PATHS.streamPredict, [bytes], DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/request_id/);
    await expectStillServing();
  });

  it('a valid request_id is still echoed in x-request-id on an error', async () => {
    const err = await predictError(t.client, await request({ request_id: 'req-42', embodiment: 'hexapod' }));
    expectCode(err.code, grpc.status.NOT_FOUND);
    expect(err.metadata.get('x-request-id')).toEqual(['req-42']);
  });
});

describe('finding 2: millions of empty repeated entries', () => {
  it('a body of empty images entries is refused by count before it is decoded', async () => {
    // 2 bytes per entry (tag 0x32, length 0): 450,000 entries in 900 KB, under the 1 MiB message limit.
    const flood = repeat(lengthDelimited(6, Buffer.alloc(0)), 450_000);
    const out = await rawUnary(t.client, POLICY_PATHS.predict, flood, DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/images.*more than \d+ entries/);
    await expectStillServing();
  });

  it('unpacked state floats by the hundred thousand are refused by count', async () => {
    const one = Buffer.from([0x3d, 0, 0, 0x80, 0x3f]); // field 7, wire type 5 (fixed32), 1.0f
    const out = await rawUnary(t.client, POLICY_PATHS.predict, repeat(one, 150_000), DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/state.*more than \d+ entries/);
    await expectStillServing();
  });

  it('a repeated scalar field sent a million times is refused by the field count', async () => {
    const out = await rawUnary(t.client, POLICY_PATHS.predict, repeat(varintField(10, 1), 400_000), DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/more than \d+ fields/);
    await expectStillServing();
  });

  it('a message above the limit gets INVALID_ARGUMENT saying so, on Predict and on each StreamPredict message', async () => {
    const flood = repeat(lengthDelimited(6, Buffer.alloc(0)), 600_000);
    const unary = await rawUnary(t.client, POLICY_PATHS.predict, flood, DEADLINE_MS);
    expectCode(unary.code, grpc.status.INVALID_ARGUMENT);
    expect(unary.details).toMatch(new RegExp(`limit of ${MAX_MESSAGE_BYTES}`));
    const stream = await rawStream(t.client, POLICY_PATHS.streamPredict, [codec.serialize(await request({ request_id: 'ok-1' })), flood], DEADLINE_MS);
    expectCode(stream.code, grpc.status.INVALID_ARGUMENT);
    expect(stream.details).toMatch(new RegExp(`limit of ${MAX_MESSAGE_BYTES}`));
    expect(stream.responses.map((b) => codec.deserialize(b).request_id)).toEqual(['ok-1']);
    await expectStillServing();
  });
});

describe('finding 3: a very long request_id', () => {
  it('100 KB: refused at once without echoing it, and the connection keeps working', async () => {
    const longId = 'x'.repeat(100_000);
    const out = await rawUnary(t.client, POLICY_PATHS.predict, await withRawFields(lengthDelimited(1, longId), lengthDelimited(5, 'hexapod')), DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/request_id is 100000 bytes.*limit/);
    expect(out.details.length).toBeLessThan(500);
    expect(out.metadata?.get('x-request-id') ?? []).toEqual([]);
    // Same client, same connection.
    await expectStillServing();
  });
});

describe('finding 4: ids and other strings are bounded at the edge', () => {
  const huge = 'r'.repeat(100_000);
  it.each([
    ['robot_id', { robot_id: huge }],
    ['episode_id', { episode_id: huge }],
    ['instruction', { instruction: huge }],
    ['model', { model: huge }],
    ['embodiment', { embodiment: huge }],
  ] as Array<[string, Partial<PredictRequest>]>)('an over-long %s is INVALID_ARGUMENT naming the field and the limit', async (field, over) => {
    const err = await predictError(t.client, await request(over), DEADLINE_MS);
    expectCode(err.code, grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(new RegExp(`^${field} is 100000 bytes, above the limit of \\d+`));
    await expectStillServing();
  });

  it('an over-long camera name is INVALID_ARGUMENT naming images[i].camera', async () => {
    const r = await request();
    const err = await predictError(t.client, { ...r, images: [r.images![0], { ...r.images![1], camera: huge }] }, DEADLINE_MS);
    expectCode(err.code, grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^images\[1\]\.camera is 100000 bytes, above the limit of \d+/);
  });

  it('ReportOutcome: over-long ids are INVALID_ARGUMENT', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
      t.client.ReportOutcome({ robot_id: huge, episode_id: 'e', success: true }, { deadline: Date.now() + DEADLINE_MS }, (e) =>
        e ? resolve(e) : reject(new Error('accepted')),
      ),
    );
    expectCode(err.code, grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^robot_id is 100000 bytes/);
  });

  it('1,000 requests with unique long ids are refused, so nothing is kept for them', async () => {
    const r = codec.serialize(await request());
    const outs = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        rawUnary(t.client, POLICY_PATHS.predict, Buffer.concat([r, lengthDelimited(3, `${i}-${'e'.repeat(4000)}`)]), DEADLINE_MS),
      ),
    );
    expect(new Set(outs.map((o) => grpc.status[o.code]))).toEqual(new Set(['INVALID_ARGUMENT']));
    await expectStillServing();
  });
});

describe('finding 5: smaller ones', () => {
  it.each([3.4e38, -3.4e38, 1e30])('a finite but huge state value (%d) is INVALID_ARGUMENT naming its index', async (v) => {
    const state = Array.from({ length: emb.state_dim }, () => 0);
    state[3] = v;
    const err = await predictError(t.client, await request({ state }), DEADLINE_MS);
    expectCode(err.code, grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^state\[3\]/);
    await expectStillServing();
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('embodiment %s is NOT_FOUND', async (name) => {
    const err = await predictError(t.client, await request({ embodiment: name }), DEADLINE_MS);
    expectCode(err.code, grpc.status.NOT_FOUND);
    expect(err.details).toMatch(/unknown embodiment/);
  });

  it.each([1000, 4_294_967_295])('action_steps %d above the maximum gets a message about action_steps', async (n) => {
    const err = await predictError(t.client, await request({ sampling: { action_steps: n } }), DEADLINE_MS);
    expectCode(err.code, grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(new RegExp(`action_steps ${n} exceeds`));
  });

  it('StreamPredict: an earlier good request is answered before a later model change ends the stream', async () => {
    const base = await request({ robot_id: 'streamer-order' });
    const messages = [
      { ...base, request_id: 'ok-1' },
      { ...base, request_id: 'ok-2' },
      { ...base, request_id: 'bad-3', model: 'other-model' },
      { ...base, request_id: 'never-4' },
    ].map(codec.serialize);
    const out = await rawStream(t.client, POLICY_PATHS.streamPredict, messages, DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/bad-3/);
    expect(out.responses.map((b) => codec.deserialize(b).request_id)).toEqual(['ok-1', 'ok-2']);
  });

  // Field 15 with wire type 7, which does not exist: protobufjs throws on it (grpc-js then answered INTERNAL).
  const invalidWireType = Buffer.from([0x7f]);
  // Field 1 claiming 255 bytes where none follow: protobufjs silently decoded a cut string.
  const overrun = Buffer.from([0x0a, 0xff, 0x01]);

  it('StreamPredict: an earlier good request is answered before a later unparseable message ends the stream', async () => {
    const ok = codec.serialize(await request({ request_id: 'ok-1' }));
    const out = await rawStream(t.client, POLICY_PATHS.streamPredict, [ok, invalidWireType], DEADLINE_MS);
    expectCode(out.code, grpc.status.INVALID_ARGUMENT);
    expect(out.responses.map((b) => codec.deserialize(b).request_id)).toEqual(['ok-1']);
  });

  it.each([
    ['Predict', POLICY_PATHS.predict],
    ['ListModels', POLICY_PATHS.listModels],
    ['ReportOutcome', POLICY_PATHS.reportOutcome],
  ])('%s: an unparseable body is INVALID_ARGUMENT saying what is wrong', async (_, method) => {
    for (const [body, what] of [
      [invalidWireType, /wire type invalid \(7\)/],
      [overrun, /claims 255 bytes, 0 remain/],
    ] as const) {
      const out = await rawUnary(t.client, method, body, DEADLINE_MS);
      expectCode(out.code, grpc.status.INVALID_ARGUMENT);
      expect(out.details).toMatch(/^the request is not a valid protobuf dust\.serving\.v1\.\w+Request: /);
      expect(out.details).toMatch(what);
    }
    await expectStillServing();
  });

  it('a second server on the same port fails to start with a clear error', async () => {
    // "localhost" may resolve to ::1 as well as 127.0.0.1: a partial bind must fail too, not share the port.
    for (const host of ['127.0.0.1', 'localhost']) {
      await expect(startTestServer({ host, port: t.server.port, warmup: false })).rejects.toThrow(/already in use \(another dust-serve\?\)/);
    }
    await expectStillServing();
  });
});
