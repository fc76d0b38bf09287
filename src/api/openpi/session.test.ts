import { decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import type { PredictOutput } from '../../engine/index.js';
import { UnavailableError } from '../../errors/index.js';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { silentLogger } from '../../telemetry/index.js';
import type { PreparedPredict } from '../predict-orchestrator.js';
import { requestLimits } from '../request-limits.js';
import type { Routed } from '../router.js';
import { PRESETS, resolveMapping } from './key-mapping.js';
import { OpenpiSession, type OpenpiStages, type Reply } from './session.js';

const nd = (data: Uint8Array, dtype: string, shape: number[]) => ({ __ndarray__: true, data, dtype, shape });
const OBSERVATION = encode({
  'observation/image': nd(new Uint8Array(12), '|u1', [2, 2, 3]),
  'observation/wrist_image': nd(new Uint8Array(12), '|u1', [3, 2, 2]),
  'observation/state': nd(new Uint8Array(new Float32Array([0.5, 1]).buffer), '<f4', [2]),
  prompt: 'go',
});
const ctrl = (frame: Record<string, unknown>) => encode(frame);
const unpack = (r: Reply) => {
  if (!('binary' in r)) throw new Error(`a text frame: ${r.text}`);
  return decode(r.binary, { mapKeyConverter: (k) => (typeof k === 'string' ? k : Buffer.from(k as Uint8Array).toString()), useBigInt64: true }) as Record<
    string,
    unknown
  >;
};

const OUTPUT = {
  requestId: 'req-1',
  modelName: 'dust-tiny',
  modelVersion: 2,
  variant: 'dust-tiny@2',
  actions: new Float32Array([1, 2, 3, 4]),
  actionShape: [2, 2],
  futureEmbedding: new Float32Array([0.5, 0.5]),
  futureShape: [1, 2],
  sampling: { actionSteps: 4, visionSteps: 8, seed: 7n, budgetMs: 0, budgetMet: true, budgetFeasible: true, plannedTotalMs: 0 },
  timing: { queueMs: 1, vlmMs: 2, denoiseMs: 3, totalMs: 6, vlmBatchSize: 2, meanDenoiseBatch: 1.5, preprocessMs: 0 },
  worldModelSurprise: undefined,
} as unknown as PredictOutput;

/** The stages with the engine replaced by a promise per observation that the test settles. */
function fakeSession(serve?: OpenpiStages['serve']) {
  const requests: PredictRequest__Output[] = [];
  /** The connection latency each prepare was given (what a prefix's delay is estimated from). */
  const latencies: Array<number | undefined> = [];
  const pending: Array<{ resolve(out: PredictOutput): void; reject(err: unknown): void }> = [];
  const outcomes: Array<[string, string, boolean]> = [];
  const stages: OpenpiStages = {
    admit: () => ({ assignment: { model: 'dust-tiny', version: 2 }, lease: { release: () => undefined } }) as unknown as Routed,
    prepare(req, routed, latencyMs) {
      requests.push(req);
      latencies.push(latencyMs);
      return { routed, request: { requestId: 'req-1' } } as unknown as PreparedPredict;
    },
    serve: serve ?? (() => new Promise<PredictOutput>((resolve, reject) => pending.push({ resolve, reject }))),
  };
  const session = new OpenpiSession({
    orchestrator: stages,
    book: {
      outcome: (robotId: string, episodeId: string, success: boolean) => {
        outcomes.push([robotId, episodeId, success]);
        return Promise.resolve({ model: 'dust-tiny', version: 2, counted: true });
      },
    },
    mapping: resolveMapping({ name: 'libero', entries: new Map([['*', PRESETS.get('libero')!]]) }, 'franka_fr3', ['front', 'wrist']),
    limits: requestLimits({ maxMessageBytes: 1 << 20, maxIdBytes: 24, maxInstructionBytes: 64 }),
    frameLimits: { maxBytes: 1 << 20, maxItems: 1000, maxDepth: 8 },
    robotId: 'robot-9',
    model: 'dust-tiny',
    credential: undefined,
    log: silentLogger,
  });
  /** Runs one observation to its reply, answered by the fake engine. */
  const infer = async (out: PredictOutput = OUTPUT) => {
    const reply = session.handle(OBSERVATION, true);
    await Promise.resolve();
    pending.shift()!.resolve(out);
    return reply;
  };
  return { session, requests, latencies, pending, outcomes, infer };
}

describe('OpenpiSession', () => {
  it("answers an observation with openpi's action dict and dust-serve's fields, from the request gRPC would have sent", async () => {
    const { requests, infer } = fakeSession();
    const out = unpack(await infer());
    expect(requests[0]).toMatchObject({ robot_id: 'robot-9', model: 'dust-tiny', embodiment: 'franka_fr3', instruction: 'go', state: [0.5, 1] });
    expect(out).toMatchObject({
      actions: { __ndarray__: true, dtype: '<f4', shape: [2, 2] },
      future_embedding: { shape: [1, 2] },
      server_timing: { queue_ms: 1, vlm_ms: 2, denoise_ms: 3, total_ms: 6, vlm_batch_size: 2 },
      sampling: { action_steps: 4, vision_steps: 8, seed: 7n },
      model_version: 2,
      variant: 'dust-tiny@2',
    });
    expect(out).not.toHaveProperty('world_model_surprise');
    expect(out.server_timing).not.toHaveProperty('prev_total_ms');
    expect(unpack(await infer())).toHaveProperty('server_timing.prev_total_ms');
  });

  it("real-time chunking: each observation is prepared with the connection's measured latency, and the response says how its prefix was used", async () => {
    const { latencies, infer } = fakeSession();
    const chunking = { method: 'inpaint', delaySteps: 2, delayEstimated: true, prefixLength: 5 };
    const first = unpack(await infer({ ...OUTPUT, chunking } as PredictOutput));
    expect(first.chunking).toEqual({ method: 'inpaint', delay_steps: 2, delay_estimated: true, prefix_length: 5 });
    await infer({ ...OUTPUT, timing: { ...OUTPUT.timing, totalMs: 10 } } as PredictOutput);
    const third = unpack(await infer());
    expect(third).not.toHaveProperty('chunking');
    // No measurement before the first answer; then the engine's total_ms, averaged as a stream averages it (6, then 6 + 0.25 * (10 - 6)).
    expect(latencies).toEqual([undefined, 6, 7]);
  });

  it('episodes: "<experiment>/<id>" from episode_start, credited on episode_end, then a fresh generated one', async () => {
    const { session, requests, outcomes, infer } = fakeSession();
    await infer();
    const generated = requests[0].episode_id;
    // maxIdBytes 24 has no room for a UUID: the generated id is 24 random hex digits.
    expect(generated).toMatch(/^[0-9a-f]{24}$/);
    expect(unpack(await session.handle(ctrl({ __ctrl__: 'episode_start', __experiment__: 'libero-3', __task__: 't', __episode_id__: 4 }), true))).toEqual({
      __ack__: 'episode_start',
      episode_id: 'libero-3/4',
      robot_id: 'robot-9',
    });
    await infer();
    expect(requests[1].episode_id).toBe('libero-3/4');
    expect(unpack(await session.handle(ctrl({ __ctrl__: 'episode_end', __success__: true }), true))).toEqual({
      __ack__: 'episode_end',
      episode_id: 'libero-3/4',
      counted: true,
      model_name: 'dust-tiny',
      model_version: 2,
    });
    expect(outcomes).toEqual([['robot-9', 'libero-3/4', true]]);
    await infer();
    expect(requests[2].episode_id).not.toBe('libero-3/4');
    expect(requests[2].episode_id).not.toBe(generated);
    expect(unpack(await session.handle(ctrl({ __ctrl__: 'episode_start', __episode_id__: -1 }), true)).episode_id).toMatch(/^[0-9a-f]{24}$/);
  });

  it('refuses an episode id over maxIdBytes and a __success__ that is not a boolean, and acknowledges unknown control frames', async () => {
    const { session } = fakeSession();
    expect(await session.handle(ctrl({ __ctrl__: 'episode_start', __experiment__: 'x'.repeat(30), __episode_id__: 1 }), true)).toEqual({
      text: expect.stringMatching(/episode_id \(__experiment__\/__episode_id__\) is 32 bytes, above the limit of 24/),
    });
    expect(await session.handle(ctrl({ __ctrl__: 'episode_end', __success__: 'yes' }), true)).toEqual({ text: '__success__ must be a boolean' });
    expect(unpack(await session.handle(ctrl({ __ctrl__: 'pause' }), true))).toEqual({ __ack__: 'ignored' });
  });

  it('one frame at a time: a frame while an observation runs is refused at once; text frames are refused', async () => {
    const { session, pending } = fakeSession();
    const first = session.handle(OBSERVATION, true);
    expect(session.running).toBe(true);
    expect(await session.handle(OBSERVATION, true)).toEqual({ text: expect.stringMatching(/^one frame at a time/) });
    await Promise.resolve();
    pending.shift()!.resolve(OUTPUT);
    expect('binary' in (await first)).toBe(true);
    expect(session.running).toBe(false);
    expect(await session.handle(Buffer.from('{}'), false)).toEqual({ text: expect.stringMatching(/frames must be binary msgpack/) });
  });

  it("answers an engine refusal with the gRPC error's details, and stays usable", async () => {
    const { session, pending, infer } = fakeSession();
    const refused = session.handle(OBSERVATION, true);
    await Promise.resolve();
    pending.shift()!.reject(new UnavailableError('the server is draining; retry on another replica'));
    expect(await refused).toEqual({ text: 'the server is draining; retry on another replica' });
    expect('binary' in (await infer())).toBe(true);
  });

  it('stops its running observation when the connection closes', async () => {
    const signals: AbortSignal[] = [];
    const { session } = fakeSession((_prepared, call) => {
      signals.push(call.signal);
      return new Promise<PredictOutput>(() => undefined);
    });
    void session.handle(OBSERVATION, true);
    await Promise.resolve();
    session.cancel();
    expect(signals[0].aborted).toBe(true);
  });
});
