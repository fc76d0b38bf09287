/**
 * DustClient against a stub PolicyService on a loopback port: what the client does with the wire (ordering,
 * status mapping, deadlines, cancellation). The real server's end-to-end test lives in test/.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictRequest__Output } from './gen/dust/serving/v1/PredictRequest.js';
import type { PredictResponse } from './gen/dust/serving/v1/PredictResponse.js';
import { eventually } from '../../../test/support/eventually.js';
import { DustClient } from './dust-client.js';
import { DustClientError } from './errors.js';
import { clientProtos } from './protos.js';
import { encodeTensor } from './tensor.js';

/**
 * The stub's behaviour is chosen by robot_id: "slow-<ms>", "bad", anything else answers at once. For the retry
 * tests: Predict "shed-*" is shed (RESOURCE_EXHAUSTED) on its first two attempts, "refuse-*" is shed with a
 * pushback that forbids retries, "gone-*" is always UNAVAILABLE; a StreamPredict call of "drop-*" answers
 * one request and then fails UNAVAILABLE the first time, like a replica that dies; "reset-*" fails CANCELLED
 * instead, as a proxy resets the streams of a replica that died. Predict "rst-*" fails its first attempt as a
 * proxy's stream reset reaches grpc-js (INTERNAL, RST_DETAILS); "internal-*" is a server INTERNAL every time.
 */
function answer(req: PredictRequest__Output): PredictResponse {
  const { shape, data } = encodeTensor([2, 2], [req.state[0] ?? 0, 1, 2, 3]);
  return {
    request_id: req.request_id,
    model_name: 'stub',
    model_version: 1,
    actions: { shape, data },
    sampling: { action_steps: 1, vision_steps: 2, seed: req.sampling?._seed === 'seed' ? req.sampling.seed : '99', budget_ms: 0, budget_met: true },
  };
}

const BAD: Partial<grpc.StatusObject> = { code: grpc.status.INVALID_ARGUMENT, details: 'state has 0 values; embodiment stub needs 1' };
const delayOf = (robot: string): number => (robot.startsWith('slow-') ? Number(robot.slice(5)) : 0);

let server: grpc.Server;
let address: string;
let predictCalls = 0;
/** StreamPredict messages the stub received. */
let streamMessages = 0;
/** Attempts the stub saw per robot_id (StreamPredict: calls). */
const attempts = new Map<string, number>();
const attempt = (robot: string): number => {
  const n = (attempts.get(robot) ?? 0) + 1;
  attempts.set(robot, n);
  return n;
};
/** What the "drop-*" stream calls received. */
const dropLog: Array<{ robot: string; call: number; requestId: string; model: string }> = [];
const SHED = { code: grpc.status.RESOURCE_EXHAUSTED, details: 'queue full' };
/** What grpc-js reports when a proxy resets the stream of a replica that died (HAProxy: RST_STREAM(NO_ERROR)). */
const RST_DETAILS = 'Received RST_STREAM with code 0 (Call ended without gRPC status)';

beforeAll(async () => {
  server = new grpc.Server();
  const { policy } = clientProtos();
  server.addService(policy as unknown as grpc.ServiceDefinition, {
    Predict(call: grpc.ServerUnaryCall<PredictRequest__Output, PredictResponse>, cb: grpc.sendUnaryData<PredictResponse>) {
      predictCalls++;
      const robot = call.request.robot_id;
      if (robot === 'bad') return cb(BAD);
      if (robot.startsWith('shed-') && attempt(robot) <= 2) return cb(SHED);
      if (robot.startsWith('refuse-')) {
        attempt(robot);
        const metadata = new grpc.Metadata();
        metadata.set('grpc-retry-pushback-ms', '-1');
        return cb({ ...SHED, metadata });
      }
      if (robot.startsWith('gone-')) return cb({ code: grpc.status.UNAVAILABLE, details: `attempt ${attempt(robot)}: draining` });
      if (robot.startsWith('rst-') && attempt(robot) === 1) return cb({ code: grpc.status.INTERNAL, details: RST_DETAILS });
      if (robot.startsWith('internal-')) return cb({ code: grpc.status.INTERNAL, details: `attempt ${attempt(robot)}: a bug` });
      setTimeout(() => cb(null, answer(call.request)), delayOf(call.request.robot_id));
    },
    StreamPredict(call: grpc.ServerDuplexStream<PredictRequest__Output, PredictResponse>) {
      // Answer strictly in order even though later requests would be quicker.
      let chain = Promise.resolve();
      let callNumber = 0;
      let answered = 0;
      let broken = false;
      call.on('data', (req: PredictRequest__Output) => {
        streamMessages++;
        const dropping = req.robot_id.startsWith('drop-') || req.robot_id.startsWith('reset-');
        if (dropping) {
          callNumber ||= attempt(req.robot_id);
          dropLog.push({ robot: req.robot_id, call: callNumber, requestId: req.request_id, model: req.model });
        }
        chain = chain.then(async () => {
          if (broken) return;
          if (req.robot_id === 'bad') return void call.emit('error', BAD);
          if (dropping && callNumber === 1 && answered === 1) {
            broken = true;
            const reset = req.robot_id.startsWith('reset-');
            return void call.emit(
              'error',
              reset ? { code: grpc.status.CANCELLED, details: 'Call cancelled' } : { code: grpc.status.UNAVAILABLE, details: 'connection dropped' },
            );
          }
          await new Promise((r) => setTimeout(r, delayOf(req.robot_id)));
          call.write(answer(req));
          answered++;
        });
      });
      call.on('end', () => void chain.then(() => call.end()));
    },
    ListModels(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
      cb(null, { default_model: 'stub', models: [{ name: 'stub', version: 1, state: 'MODEL_STATE_READY' }] });
    },
    ReportOutcome(call: grpc.ServerUnaryCall<{ robot_id: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      cb(null, { model_name: 'stub', model_version: call.request.robot_id === 'r' ? 1 : 2 });
    },
  });
  new HealthImplementation({ '': 'SERVING', stub: 'NOT_SERVING' }).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});

afterAll(() => server.forceShutdown());

async function rejection(p: Promise<unknown>): Promise<DustClientError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DustClientError);
  return err as DustClientError;
}

describe('DustClient', () => {
  it('predicts: request fields reach the server and the result comes back decoded', async () => {
    const client = new DustClient(address);
    try {
      const r = await client.predict({ robotId: 'r', embodiment: 'stub', requestId: 'q1', state: [0.5], sampling: { seed: 2n ** 64n - 1n } });
      expect(r.requestId).toBe('q1');
      expect(Array.from(r.actions.data)).toEqual([0.5, 1, 2, 3]);
      expect(r.sampling.seed).toBe(2n ** 64n - 1n);
    } finally {
      client.close();
    }
  });

  it('rejects with the server status wrapped in a DustClientError', async () => {
    const client = new DustClient(address);
    const err = await rejection(client.predict({ robotId: 'bad', embodiment: 'stub' }));
    client.close();
    expect(err.codeName).toBe('INVALID_ARGUMENT');
    expect(err.code).toBe(3);
    expect(err.details).toBe(BAD.details);
    expect((err.cause as grpc.ServiceError).code).toBe(3);
  });

  it('fails a request it cannot encode with INVALID_ARGUMENT without calling the server', async () => {
    const client = new DustClient(address);
    const before = predictCalls;
    const err = await rejection(client.predict({ robotId: 'r', embodiment: 'stub', sampling: { seed: -1 } }));
    client.close();
    expect(err.codeName).toBe('INVALID_ARGUMENT');
    expect(err.details).toMatch(/sampling\.seed/);
    expect(predictCalls).toBe(before);
  });

  it('applies the default deadline, and a per-call one over it', async () => {
    const client = new DustClient(address, { defaultDeadlineMs: 50 });
    try {
      expect((await rejection(client.predict({ robotId: 'slow-300', embodiment: 'stub' }))).codeName).toBe('DEADLINE_EXCEEDED');
      const r = await client.predict({ robotId: 'slow-100', embodiment: 'stub', requestId: 'ok' }, { deadlineMs: 2000 });
      expect(r.requestId).toBe('ok');
    } finally {
      client.close();
    }
  });

  it('cancels on an AbortSignal', async () => {
    const client = new DustClient(address);
    try {
      const ctl = new AbortController();
      const before = predictCalls;
      const pending = client.predict({ robotId: 'slow-500', embodiment: 'stub' }, { signal: ctl.signal });
      // Aborted while the server holds the call.
      await eventually(() => predictCalls > before, { what: 'the server to receive the call' });
      ctl.abort();
      expect((await rejection(pending)).codeName).toBe('CANCELLED');
      expect((await rejection(client.predict({ robotId: 'r', embodiment: 'stub' }, { signal: AbortSignal.abort() }))).codeName).toBe('CANCELLED');
    } finally {
      client.close();
    }
  });

  it('lists models, reports outcomes and checks health', async () => {
    const client = new DustClient(address);
    try {
      expect((await client.listModels()).models[0]).toMatchObject({ name: 'stub', state: 'READY' });
      expect(await client.reportOutcome({ robotId: 'r', episodeId: 'e', success: true, reward: 1 })).toEqual({
        modelName: 'stub',
        modelVersion: 1,
        counted: false,
      });
      expect(await client.health()).toBe('SERVING');
      expect(await client.health('stub')).toBe('NOT_SERVING');
      expect((await rejection(client.health('nope'))).codeName).toBe('NOT_FOUND');
    } finally {
      client.close();
    }
  });

  it('refuses calls after close()', async () => {
    const client = new DustClient(address);
    client.close();
    expect((await rejection(client.listModels())).codeName).toBe('FAILED_PRECONDITION');
    expect(() => client.stream()).toThrow(DustClientError);
  });

  it('reports UNAVAILABLE when nothing listens', async () => {
    const probe = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      probe.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    probe.forceShutdown();
    const client = new DustClient(`127.0.0.1:${port}`);
    const err = await rejection(client.listModels());
    client.close();
    expect(err.codeName).toBe('UNAVAILABLE');
  });
});

describe('retries', () => {
  it('retries a shed request with backoff until it is served', async () => {
    const client = new DustClient(address);
    try {
      expect((await client.predict({ robotId: 'shed-a', embodiment: 'stub', requestId: 'kept' })).requestId).toBe('kept');
      expect(attempts.get('shed-a')).toBe(3);
    } finally {
      client.close();
    }
  });

  it('stops when the server pushes back with a negative delay, or after maxAttempts', async () => {
    const client = new DustClient(address, { retry: { maxAttempts: 3 } });
    try {
      expect((await rejection(client.predict({ robotId: 'refuse-a', embodiment: 'stub' }))).codeName).toBe('RESOURCE_EXHAUSTED');
      expect(attempts.get('refuse-a')).toBe(1);
      const err = await rejection(client.predict({ robotId: 'gone-a', embodiment: 'stub' }));
      expect(err.codeName).toBe('UNAVAILABLE');
      expect(err.details).toBe('attempt 3: draining');
    } finally {
      client.close();
    }
  });

  it('attempts a call that broke in transit again, but not a server INTERNAL', async () => {
    const client = new DustClient(address, { defaultDeadlineMs: 5000 });
    try {
      expect((await client.predict({ robotId: 'rst-a', embodiment: 'stub', requestId: 'again' })).requestId).toBe('again');
      expect(attempts.get('rst-a')).toBe(2);
      const err = await rejection(client.predict({ robotId: 'internal-a', embodiment: 'stub' }));
      expect(err.details).toBe('attempt 1: a bug');
    } finally {
      client.close();
    }
    const off = new DustClient(address, { retry: false });
    try {
      expect((await rejection(off.predict({ robotId: 'rst-b', embodiment: 'stub' }))).details).toBe(RST_DETAILS);
    } finally {
      off.close();
    }
  });

  it('does not retry with retry: false', async () => {
    const client = new DustClient(address, { retry: false });
    try {
      expect((await rejection(client.predict({ robotId: 'shed-b', embodiment: 'stub' }))).codeName).toBe('RESOURCE_EXHAUSTED');
      expect(attempts.get('shed-b')).toBe(1);
    } finally {
      client.close();
    }
  });

  it('re-opens a broken stream and sends the unanswered requests again, pinned to the version that served it', async () => {
    const client = new DustClient(address);
    try {
      const stream = client.stream();
      const sends = ['q0', 'q1', 'q2'].map((requestId) => stream.send({ robotId: 'drop-a', embodiment: 'stub', requestId }));
      const results = await Promise.all(sends);
      const after = await stream.send({ robotId: 'drop-a', embodiment: 'stub', requestId: 'q3' });
      stream.end();
      expect([...results, after].map((r) => r.requestId)).toEqual(['q0', 'q1', 'q2', 'q3']);
      expect(stream.resumed).toBe(1);
      const log = dropLog.filter((e) => e.robot === 'drop-a');
      expect(log.filter((e) => e.call === 1).map((e) => [e.requestId, e.model])).toEqual([
        ['q0', ''],
        ['q1', ''],
        ['q2', ''],
      ]);
      expect(log.filter((e) => e.call === 2).map((e) => [e.requestId, e.model])).toEqual([
        ['q1', 'stub@1'],
        ['q2', 'stub@1'],
        ['q3', 'stub@1'],
      ]);
    } finally {
      client.close();
    }
  });

  it('re-opens a stream that the other side reset (CANCELLED not asked for), but not one it cancelled itself', async () => {
    const client = new DustClient(address);
    try {
      const reset = client.stream();
      const results = await Promise.all(['q0', 'q1'].map((requestId) => reset.send({ robotId: 'reset-a', embodiment: 'stub', requestId })));
      expect(results.map((r) => r.requestId)).toEqual(['q0', 'q1']);
      expect(reset.resumed).toBe(1);
      reset.end();
      const mine = client.stream();
      const before = streamMessages;
      const pending = mine.send({ robotId: 'slow-500', embodiment: 'stub' });
      await eventually(() => streamMessages > before, { what: 'the server to receive the request' });
      mine.cancel();
      expect((await rejection(pending)).codeName).toBe('CANCELLED');
      expect(mine.resumed).toBe(0);
    } finally {
      client.close();
    }
  });

  it('fails the stream with its status when re-opening is off', async () => {
    const client = new DustClient(address, { retry: false });
    try {
      const stream = client.stream();
      const first = stream.send({ robotId: 'drop-b', embodiment: 'stub', requestId: 'q0' });
      const second = rejection(stream.send({ robotId: 'drop-b', embodiment: 'stub', requestId: 'q1' }));
      expect((await first).requestId).toBe('q0');
      expect((await second).codeName).toBe('UNAVAILABLE');
      expect(stream.resumed).toBe(0);
    } finally {
      client.close();
    }
  });
});

describe('PredictStream', () => {
  it('resolves each send with its own response, in order', async () => {
    const client = new DustClient(address);
    try {
      const stream = client.stream();
      const sends = [80, 0, 40, 0].map((ms, i) => stream.send({ robotId: `slow-${ms}`, embodiment: 'stub', requestId: `q${i}`, state: [i] }));
      expect(stream.inFlight).toBe(4);
      const results = await Promise.all(sends);
      expect(results.map((r) => r.requestId)).toEqual(['q0', 'q1', 'q2', 'q3']);
      expect(results.map((r) => r.actions.data[0])).toEqual([0, 1, 2, 3]);
      stream.end();
      expect((await rejection(stream.send({ robotId: 'r', embodiment: 'stub' }))).codeName).toBe('FAILED_PRECONDITION');
    } finally {
      client.close();
    }
  });

  it('answers already-sent requests after end()', async () => {
    const client = new DustClient(address);
    try {
      const stream = client.stream();
      const last = stream.send({ robotId: 'slow-30', embodiment: 'stub', requestId: 'tail' });
      stream.end();
      expect((await last).requestId).toBe('tail');
    } finally {
      client.close();
    }
  });

  it('rejects every unanswered send with the stream status, and later sends too', async () => {
    const client = new DustClient(address);
    try {
      const stream = client.stream();
      const first = stream.send({ robotId: 'r', embodiment: 'stub', requestId: 'a' });
      // Handlers attached at once: both settle together.
      const bad = rejection(stream.send({ robotId: 'bad', embodiment: 'stub' }));
      const after = rejection(stream.send({ robotId: 'r', embodiment: 'stub' }));
      expect((await first).requestId).toBe('a');
      expect((await bad).details).toBe(BAD.details);
      expect((await after).codeName).toBe('INVALID_ARGUMENT');
      expect((await rejection(stream.send({ robotId: 'r', embodiment: 'stub' }))).codeName).toBe('INVALID_ARGUMENT');
    } finally {
      client.close();
    }
  });

  it('keeps the stream usable after a send it cannot encode', async () => {
    const client = new DustClient(address);
    try {
      const stream = client.stream();
      expect((await rejection(stream.send({ robotId: 'r', embodiment: 'stub', sampling: { actionSteps: -2 } }))).codeName).toBe('INVALID_ARGUMENT');
      expect((await stream.send({ robotId: 'r', embodiment: 'stub', requestId: 'fine' })).requestId).toBe('fine');
      stream.end();
    } finally {
      client.close();
    }
  });

  it('cancels on an AbortSignal', async () => {
    const client = new DustClient(address);
    try {
      const ctl = new AbortController();
      const stream = client.stream({ signal: ctl.signal });
      const before = streamMessages;
      const pending = stream.send({ robotId: 'slow-500', embodiment: 'stub' });
      await eventually(() => streamMessages > before, { what: 'the server to receive the request' });
      ctl.abort();
      expect((await rejection(pending)).codeName).toBe('CANCELLED');
    } finally {
      client.close();
    }
  });
});
