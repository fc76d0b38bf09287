/**
 * Bounded streams and calls on the real server: the per-connection stream cap is advertised in SETTINGS; a
 * call the server has answered has its HTTP/2 stream reset with NO_ERROR though the client never half-closed
 * (so HEADERS-only floods hold nothing), while grpc-js clients still get the real status; open calls and
 * health Watch streams are bounded, health Check still answers when the call bound is reached, and a slot is
 * given back when its call ends; a connection that keeps having calls refused before their first message is
 * closed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_PATHS } from './support/hostile/raw-calls.js';
import { grpcHeaders, grpcMessage, RawH2Connection } from './support/hostile/raw-h2.js';
import { loadProtos } from '../src/api/index.js';
import type { PredictResponse__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import { startTestServer, validRequest, type TestServer } from './support/harness.js';

const TOKEN = 'robot-secret-5e1b77c0a9d4';
const LIMITS = { maxConcurrentStreams: 8, maxOpenCalls: 4, maxWatchStreams: 3, maxWatchStreamsPerConnection: 2 };
const PREDICT = POLICY_PATHS.predict;
const STREAM_PREDICT = POLICY_PATHS.streamPredict;

let dir: string;
let s: TestServer;
const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');
const { policy } = loadProtos();
const serializeRequest = policy.PolicyService.service.Predict.requestSerialize as (r: unknown) => Buffer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dust-streams-'));
  const tokensFile = path.join(dir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify([{ token: TOKEN, role: 'robot', name: 'arm-1' }]));
  s = await startTestServer({ ...LIMITS, tokensFile, warmup: false });
});

afterAll(async () => {
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

const withToken = () => {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${TOKEN}`);
  return md;
};

/** A raw HTTP/2 connection to the server, once its SETTINGS are in. */
async function connect(): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://${s.address}`);
  session.on('error', () => undefined);
  await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
  return session;
}

interface RawOutcome {
  readonly grpcStatus: string | undefined;
  readonly dataFrames: number;
  readonly rstCode: number;
}

/**
 * Opens a gRPC stream on `session`, writes `messages`, never half-closes, and resolves when the server has
 * closed the stream: the status it sent (in trailers-only headers or trailers) and the RST_STREAM code.
 */
function rawCall(session: http2.ClientHttp2Session, method: string, headers: Record<string, string>, messages: readonly Buffer[] = []): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const stream = session.request(
      { ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers', ...headers },
      { endStream: false },
    );
    let grpcStatus: string | undefined;
    let dataFrames = 0;
    stream.on('response', (h) => (grpcStatus ??= h['grpc-status'] as string | undefined));
    stream.on('trailers', (h) => (grpcStatus ??= h['grpc-status'] as string | undefined));
    stream.on('data', () => dataFrames++);
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ grpcStatus, dataFrames, rstCode: stream.rstCode ?? -1 }));
    for (const m of messages) stream.write(grpcMessage(m));
  });
}

describe('per-connection stream cap', () => {
  it('is advertised in SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    const session = await connect();
    try {
      expect(session.remoteSettings.maxConcurrentStreams).toBe(LIMITS.maxConcurrentStreams);
    } finally {
      session.close();
    }
  });
});

describe('a call the server answered before the client half-closed', () => {
  it('a call refused for its missing token gets its status and a NO_ERROR reset, and frees its stream slot', async () => {
    const session = await connect();
    try {
      // Three times the connection's stream cap, one after the other: every slot is given back by the reset.
      for (let i = 0; i < 3 * LIMITS.maxConcurrentStreams; i++) {
        const out = await rawCall(session, PREDICT, {});
        expect(out).toEqual({ grpcStatus: String(grpc.status.UNAUTHENTICATED), dataFrames: 0, rstCode: http2.constants.NGHTTP2_NO_ERROR });
      }
    } finally {
      session.close();
    }
  });

  it('a stream refused after responses gets its trailers, then a NO_ERROR reset', async () => {
    const session = await connect();
    try {
      const valid = serializeRequest(await validRequest());
      const out = await rawCall(session, STREAM_PREDICT, { authorization: `Bearer ${TOKEN}` }, [valid, Buffer.from([0xff, 0xff, 0xff])]);
      expect(out).toEqual({ grpcStatus: String(grpc.status.INVALID_ARGUMENT), dataFrames: 1, rstCode: http2.constants.NGHTTP2_NO_ERROR });
    } finally {
      session.close();
    }
  });

  it('grpc-js clients see the real status, unary and streaming, not the reset', async () => {
    const unary = await new Promise<grpc.ServiceError | null>((resolve) =>
      s.client.Predict({}, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) => resolve(err)),
    );
    expect(unary?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(unary?.details).toMatch(/needs a credential/);

    // A stream the client never half-closes.
    const stream = s.client.StreamPredict(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    stream.on('error', () => undefined);
    const status = await new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
    expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(status.details).toMatch(/needs a credential/);

    // A stream that got a response before its refusal: the status comes in trailers, before the reset.
    const raw = new grpc.Client(s.address, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    const bidi = raw.makeBidiStreamRequest(STREAM_PREDICT, identity, identity, withToken(), { deadline: Date.now() + 30_000 });
    const responses: Buffer[] = [];
    bidi.on('data', (b: Buffer) => responses.push(b));
    bidi.on('error', () => undefined);
    const refused = new Promise<grpc.StatusObject>((resolve) => bidi.on('status', resolve));
    bidi.write(serializeRequest(await validRequest()));
    bidi.write(Buffer.from([0xff, 0xff, 0xff]));
    const after = await refused;
    raw.close();
    expect(responses).toHaveLength(1);
    expect(after.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(after.details).toMatch(/not a valid protobuf dust\.serving\.v1\.PredictRequest/);
  });
});

describe('open calls', () => {
  it('beyond maxOpenCalls a call gets RESOURCE_EXHAUSTED at once, health Check still answers, and an ended call gives its slot back', async () => {
    const request = await validRequest();
    // maxOpenCalls streams, each admitted for sure once it has answered a request; none half-closes.
    const streams = await Promise.all(
      Array.from({ length: LIMITS.maxOpenCalls }, async () => {
        const stream = s.client.StreamPredict(withToken(), { deadline: Date.now() + 60_000 });
        stream.on('error', () => undefined);
        const answered = new Promise<PredictResponse__Output>((resolve) => stream.once('data', resolve));
        stream.write(request);
        await answered;
        return stream;
      }),
    );
    try {
      const over = await new Promise<grpc.ServiceError | null>((resolve) =>
        s.client.Predict(request, withToken(), { deadline: Date.now() + 10_000 }, (err) => resolve(err)),
      );
      expect(over?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(over?.details).toMatch(/calls open, its limit \(maxOpenCalls\)/);

      const health = new HealthClient(s.address, grpc.credentials.createInsecure());
      const checked = await new Promise<{ status: string }>((resolve, reject) =>
        (health as unknown as { Check: (r: object, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service: '' }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );
      health.close();
      expect(checked.status).toBe('SERVING');

      // A stream that ends gives its slot back before its status reaches the client.
      const first = streams.shift()!;
      const ended = new Promise<grpc.StatusObject>((resolve) => first.on('status', resolve));
      first.end();
      expect((await ended).code).toBe(grpc.status.OK);
      const again = await new Promise<grpc.ServiceError | null>((resolve) =>
        s.client.Predict(request, withToken(), { deadline: Date.now() + 30_000 }, (err) => resolve(err)),
      );
      expect(again).toBeNull();
    } finally {
      for (const stream of streams) stream.cancel();
    }
  });
});

type Watch = grpc.ClientReadableStream<{ status: string }>;
type HealthWatcher = grpc.Client & { Watch: (r: { service: string }) => Watch };

/** A Watch on `client`'s connection: resolves with it once its first status arrived, or with the error it got. */
function watch(client: HealthWatcher): Promise<{ stream: Watch; error?: undefined } | { stream?: undefined; error: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const stream = client.Watch({ service: '' });
    stream.once('data', () => resolve({ stream }));
    stream.on('error', (error: grpc.ServiceError) => resolve({ error }));
  });
}

describe('health Watch streams', () => {
  it('are bounded per connection and in all, with details that say which bound; a cancelled Watch gives its slot back', async () => {
    // Each client its own connection.
    const connection = () =>
      new HealthClient(s.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as HealthWatcher;
    const a = connection();
    const b = connection();
    const c = connection();
    const open: Watch[] = [];
    try {
      for (let i = 0; i < LIMITS.maxWatchStreamsPerConnection; i++) open.push((await watch(a)).stream!);
      const thirdOnA = await watch(a);
      expect(thirdOnA.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(thirdOnA.error?.details).toMatch(/this connection has 2 health Watch streams open.*maxWatchStreamsPerConnection/);

      open.push((await watch(b)).stream!);
      const overTotal = await watch(c);
      expect(overTotal.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(overTotal.error?.details).toMatch(/this server has 3 health Watch streams open.*maxWatchStreams\)/);

      // The server learns of the cancellation over the network: a new Watch is admitted once it has.
      open.shift()!.cancel();
      let admitted: Watch | undefined;
      for (let attempt = 0; attempt < 100 && !admitted; attempt++) admitted = (await watch(c)).stream;
      expect(admitted).toBeDefined();
      open.push(admitted!);
    } finally {
      for (const w of open) w.cancel();
      for (const client of [a, b, c]) client.close();
    }
  });
});

describe('connections of an address that keeps having calls refused before their first message', () => {
  const RATE = 5;
  let guarded: TestServer;
  let tokens: string;

  beforeAll(async () => {
    tokens = path.join(dir, 'tokens.json');
    guarded = await startTestServer({ tokensFile: tokens, warmup: false, peerRefusalsPerSecond: RATE });
  });
  afterAll(async () => {
    await guarded?.close();
  });

  /** Opens `calls` HEADERS-only Predict calls without a token on a new connection; how the server left it. */
  async function refusedCalls(calls: number): Promise<{ closed: boolean; goawayCode: number | undefined }> {
    const [host, port] = guarded.address.split(':');
    const connection = await RawH2Connection.connect(host, Number(port));
    try {
      await connection.flood(calls, grpcHeaders(guarded.address, PREDICT));
      await connection.ping();
      return { closed: connection.closed, goawayCode: connection.goawayCode };
    } finally {
      connection.close();
    }
  }

  // First: the address's budget is shared by its connections, and the flood below spends it.
  it('is not closed for refusals within its burst', async () => {
    // A second of the rate is the burst.
    expect(await refusedCalls(RATE)).toEqual({ closed: false, goawayCode: undefined });
  });

  it('are closed with GOAWAY ENHANCE_YOUR_CALM, a reconnection at its first refusal, while calls that send their messages keep being served', async () => {
    expect((await refusedCalls(1000)).goawayCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    // Reconnecting does not renew the address's budget: the next refused call closes the new connection too.
    expect((await refusedCalls(1)).goawayCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    const request = await validRequest();
    const response = await new Promise<grpc.ServiceError | PredictResponse__Output>((resolve) =>
      guarded.client.Predict(request, withToken(), { deadline: Date.now() + 30_000 }, (err, res) => resolve(err ?? res!)),
    );
    expect(response).toHaveProperty('actions');
  });
});
