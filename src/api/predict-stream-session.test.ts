import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, OverloadedError } from '../errors/index.js';
import type { Assignment } from '../experiment/index.js';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import type { CallContext, PreparedPredict } from './predict-orchestrator.js';
import { DEFAULT_STREAM_PIPELINE_DEPTH, PredictStreamSession, type StreamCall, type StreamStages } from './predict-stream-session.js';
import { RefusedMessage } from './request-limits.js';
import type { Routed } from './router.js';

const ASSIGNMENT = { model: 'dust-tiny', version: 2 } as Assignment;

function request(id: string, fields: Partial<PredictRequest__Output> = {}): PredictRequest__Output {
  return { request_id: id, robot_id: 'r1', episode_id: '', model: '', ...fields } as PredictRequest__Output;
}

interface Running {
  readonly id: string;
  readonly signal: AbortSignal;
  answer(): void;
  refuse(err: unknown): void;
}

/**
 * The orchestrator's stages with the engine replaced by promises the test settles: `running` holds each
 * request that reached run, in arrival order; `refuseOnPrepare` names requests that fail validation.
 */
function fakeStages(refuseOnPrepare: ReadonlySet<string> = new Set()) {
  const running: Running[] = [];
  const routedTo: string[] = [];
  const stages: StreamStages = {
    admit(modelField) {
      routedTo.push(`route ${modelField}`);
      return { assignment: ASSIGNMENT } as Routed;
    },
    admitAgain(assignment) {
      routedTo.push('again');
      return { assignment } as Routed;
    },
    prepare(req, routed) {
      if (refuseOnPrepare.has(req.request_id)) throw new InvalidArgumentError(`state of ${req.request_id} is wrong`);
      return { routed, input: { requestId: req.request_id } } as unknown as PreparedPredict;
    },
    run(prepared: PreparedPredict, call: CallContext) {
      const id = prepared.input.requestId;
      return new Promise<PredictResponse>((resolve, reject) => {
        running.push({ id, signal: call.signal, answer: () => resolve({ request_id: id }), refuse: reject });
      });
    },
  };
  return { stages, running, routedTo };
}

/** Records what the session does to its call, in order. */
function recordingCall() {
  const events: string[] = [];
  const failures: { err: unknown; req: PredictRequest__Output | undefined }[] = [];
  const call: StreamCall = {
    bound: (a) => events.push(`bound ${a.model}@${a.version}`),
    write: (res) => events.push(`write ${res.request_id}`),
    end: () => events.push('end'),
    fail: (err, req) => {
      failures.push({ err, req });
      events.push(`fail ${req?.request_id ?? '(message)'}`);
    },
    pause: () => events.push('pause'),
    resume: () => events.push('resume'),
  };
  return { call, events, failures };
}

/** A bug in the session's bookkeeping surfaces as an unhandled rejection, which fails the run. */
function session(stages: StreamStages, call: StreamCall, depth?: number): PredictStreamSession {
  return new PredictStreamSession(stages, call, {
    deadline: Infinity,
    credential: undefined,
    depth,
    onBug: (err) => {
      throw err;
    },
  });
}

/** Lets the session's promise chain run: every step of it is a microtask, so one macrotask turn drains it. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

const writes = (events: readonly string[]) => events.filter((e) => e.startsWith('write') || e === 'end' || e.startsWith('fail'));

describe('PredictStreamSession', () => {
  it('writes responses in request order however the requests finish, then ends when the input has ended', async () => {
    const { stages, running } = fakeStages();
    const { call, events } = recordingCall();
    const s = session(stages, call);
    for (const id of ['a', 'b', 'c']) s.accept(request(id));
    s.endOfInput();
    running[2].answer();
    running[1].answer();
    await settled();
    expect(writes(events)).toEqual([]);
    running[0].answer();
    await settled();
    expect(writes(events)).toEqual(['write a', 'write b', 'write c', 'end']);
  });

  it('does not end before the last response is written, and ends at once on an empty stream', async () => {
    const { stages, running } = fakeStages();
    const { call, events } = recordingCall();
    const s = session(stages, call);
    s.accept(request('a'));
    s.endOfInput();
    await settled();
    expect(events).not.toContain('end');
    running[0].answer();
    await settled();
    expect(writes(events)).toEqual(['write a', 'end']);

    const empty = recordingCall();
    session(fakeStages().stages, empty.call).endOfInput();
    await settled();
    expect(empty.events).toEqual(['end']);
  });

  it('pauses the input at the pipeline depth and resumes it as responses leave', async () => {
    const { stages, running } = fakeStages();
    const { call, events } = recordingCall();
    const s = session(stages, call, 2);
    s.accept(request('a'));
    expect(events).not.toContain('pause');
    s.accept(request('b'));
    expect(events.at(-1)).toBe('pause');
    running[0].answer();
    await settled();
    expect(events.slice(-2)).toEqual(['write a', 'resume']);
    expect(DEFAULT_STREAM_PIPELINE_DEPTH).toBe(8); // docs/api.md, "StreamPredict"
  });

  it('routes the first request, binds the stream to its version and runs the others there', async () => {
    const { stages, running, routedTo } = fakeStages();
    const { call, events } = recordingCall();
    const s = session(stages, call);
    s.accept(request('a', { model: 'dust-tiny' }));
    s.accept(request('b', { model: 'dust-tiny' }));
    s.accept(request('c', { model: 'dust-tiny@2' }));
    s.accept(request('d'));
    expect(routedTo).toEqual(['route dust-tiny', 'again', 'again', 'again']);
    expect(events[0]).toBe('bound dust-tiny@2');
    for (const r of running) r.answer();
    await settled();
    expect(writes(events)).toEqual(['write a', 'write b', 'write c', 'write d']);
  });

  it('a request that asks for another model ends the stream after the earlier responses, naming it', async () => {
    const { stages, running } = fakeStages();
    const { call, events, failures } = recordingCall();
    const s = session(stages, call);
    s.accept(request('a', { model: 'dust-tiny' }));
    s.accept(request('b', { model: 'dust-small' }));
    s.accept(request('c', { model: 'dust-tiny' }));
    expect(running.map((r) => r.id)).toEqual(['a']);
    running[0].answer();
    await settled();
    expect(writes(events)).toEqual(['write a', 'fail b']);
    expect(failures[0].err).toBeInstanceOf(InvalidArgumentError);
    expect((failures[0].err as Error).message).toMatch(/bound to dust-tiny@2; request "b" asks for "dust-small"/);
  });

  it('a request refused by validation ends the stream after the earlier responses; no request after it runs', async () => {
    const { stages, running } = fakeStages(new Set(['b']));
    const { call, events, failures } = recordingCall();
    const s = session(stages, call);
    s.accept(request('a'));
    s.accept(request('b'));
    s.accept(request('c'));
    s.endOfInput();
    expect(running.map((r) => r.id)).toEqual(['a']);
    await settled();
    expect(writes(events)).toEqual([]);
    running[0].answer();
    await settled();
    expect(writes(events)).toEqual(['write a', 'fail b']);
    expect(failures[0].req?.request_id).toBe('b');
  });

  it('a message the request limits refused ends the stream after the earlier responses', async () => {
    const { stages, running } = fakeStages();
    const { call, events, failures } = recordingCall();
    const s = session(stages, call);
    const refusal = new InvalidArgumentError('the request message is too large');
    s.accept(request('a'));
    s.accept(new RefusedMessage(refusal, true));
    s.accept(request('c'));
    running[0].answer();
    await settled();
    expect(running.map((r) => r.id)).toEqual(['a']);
    expect(writes(events)).toEqual(['write a', 'fail (message)']);
    expect(failures[0].err).toBe(refusal);
  });

  it('a request that fails while running ends the stream in its turn and aborts the requests after it', async () => {
    const { stages, running } = fakeStages();
    const { call, events, failures } = recordingCall();
    const s = session(stages, call);
    for (const id of ['a', 'b', 'c']) s.accept(request(id));
    s.endOfInput();
    const overloaded = new OverloadedError('queue full', 'queue_full');
    running[1].refuse(overloaded);
    running[2].answer();
    await settled();
    expect(writes(events)).toEqual([]);
    expect(running[2].signal.aborted).toBe(false);
    running[0].answer();
    await settled();
    expect(writes(events)).toEqual(['write a', 'fail b']);
    expect(failures).toEqual([{ err: overloaded, req: expect.objectContaining({ request_id: 'b' }) }]);
    expect(running[2].signal.aborted).toBe(true);
  });

  it('after the client cancels, nothing is written, running requests are aborted and no message is taken', async () => {
    const { stages, running } = fakeStages();
    const { call, events } = recordingCall();
    const s = session(stages, call);
    s.accept(request('a'));
    s.cancel();
    expect(running[0].signal.aborted).toBe(true);
    s.accept(request('b'));
    s.endOfInput();
    running[0].answer();
    await settled();
    expect(running.map((r) => r.id)).toEqual(['a']);
    expect(writes(events)).toEqual([]);
  });
});

describe('PredictStreamSession: the latency a prefix delay is estimated from', () => {
  it('hands prepare nothing before the first response, then a moving average of the responses total_ms', async () => {
    const seen: Array<number | undefined> = [];
    const totals = [40, 80];
    let n = 0;
    const stages: StreamStages = {
      admit: () => ({ assignment: ASSIGNMENT }) as Routed,
      admitAgain: (assignment) => ({ assignment }) as Routed,
      prepare(req, routed, latencyMs) {
        seen.push(latencyMs);
        return { routed, input: { requestId: req.request_id } } as unknown as PreparedPredict;
      },
      run: async (prepared) => ({ request_id: prepared.input.requestId, timing: { total_ms: totals[n++] } }),
    };
    const s = session(stages, recordingCall().call);
    s.accept(request('a'));
    await settled();
    s.accept(request('b'));
    await settled();
    s.accept(request('c'));
    await settled();
    expect(seen[0]).toBeUndefined();
    expect(seen[1]).toBe(40);
    expect(seen[2]).toBeGreaterThan(40);
    expect(seen[2]).toBeLessThan(80);
  });
});
