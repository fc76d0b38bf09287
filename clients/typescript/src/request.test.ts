import { describe, expect, it } from 'vitest';
import { clientProtos } from './protos.js';
import { MAX_SEED, seedToWire, toPredictRequest, type PredictRequestInit } from './request.js';

const base: PredictRequestInit = { robotId: 'r1', embodiment: 'franka' };

describe('toPredictRequest', () => {
  it('maps camelCase fields to the proto fields', () => {
    const jpeg = Uint8Array.from([0xff, 0xd8, 0xff]);
    const raw = new Uint8Array(2 * 3 * 3);
    const msg = toPredictRequest({
      robotId: 'r1',
      embodiment: 'franka',
      images: [
        { camera: 'wrist', encoding: 'jpeg', data: jpeg },
        { camera: 'top', encoding: 'raw_rgb8', data: raw, width: 3, height: 2 },
        { camera: 'side', encoding: 'png', data: jpeg },
      ],
      state: Float32Array.from([0.5, -1]),
      instruction: 'pick the cube',
      sampling: { actionSteps: 4, visionSteps: 8, seed: 7, latencyBudgetMs: 50, strictBudget: true },
      returnFutureEmbedding: true,
      model: 'dust-tiny@1',
      episodeId: 'ep',
      requestId: 'req',
      stepsExecuted: 3,
    });
    expect(msg).toEqual({
      request_id: 'req',
      robot_id: 'r1',
      episode_id: 'ep',
      model: 'dust-tiny@1',
      embodiment: 'franka',
      images: [
        { camera: 'wrist', encoding: 'IMAGE_ENCODING_JPEG', width: 0, height: 0, data: jpeg },
        { camera: 'top', encoding: 'IMAGE_ENCODING_RAW_RGB8', width: 3, height: 2, data: raw },
        { camera: 'side', encoding: 'IMAGE_ENCODING_PNG', width: 0, height: 0, data: jpeg },
      ],
      state: [0.5, -1],
      instruction: 'pick the cube',
      sampling: { action_steps: 4, vision_steps: 8, seed: '7', latency_budget_ms: 50, strict_budget: true },
      return_future_embedding: true,
      steps_executed: 3,
    });
  });

  it('fills defaults and leaves the seed unset so the server draws one', () => {
    const msg = toPredictRequest(base);
    expect(msg).toMatchObject({ model: '', images: [], state: [], instruction: '', return_future_embedding: false, steps_executed: 0 });
    expect(msg.sampling).toEqual({ action_steps: 0, vision_steps: 0, latency_budget_ms: 0 });
    expect(msg.sampling).not.toHaveProperty('seed');
  });

  it('gives a request without an id a fresh UUID, which its retries carry (a fleet counts it once)', () => {
    const [a, b] = [toPredictRequest(base), toPredictRequest(base)];
    expect(a.request_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b.request_id).not.toBe(a.request_id);
  });

  it('names the field of an integer that protobufjs would silently wrap', () => {
    expect(() => toPredictRequest({ ...base, sampling: { actionSteps: -1 } })).toThrow(/sampling\.actionSteps must be an integer/);
    expect(() => toPredictRequest({ ...base, sampling: { visionSteps: 2.5 } })).toThrow(/sampling\.visionSteps/);
    expect(() => toPredictRequest({ ...base, images: [{ camera: 'c', encoding: 'raw_rgb8', data: new Uint8Array(3), width: 2 ** 32 }] })).toThrow(
      /images\[0\]\.width/,
    );
  });

  it('rejects an unknown encoding or non-byte image data from untyped callers', () => {
    const bad = { camera: 'c', encoding: 'bmp', data: new Uint8Array(1) } as unknown as NonNullable<PredictRequestInit['images']>[number];
    expect(() => toPredictRequest({ ...base, images: [bad] })).toThrow(/images\[0\]\.encoding must be one of jpeg, png, raw_rgb8/);
    const notBytes = { camera: 'c', encoding: 'jpeg', data: [1, 2] } as unknown as NonNullable<PredictRequestInit['images']>[number];
    expect(() => toPredictRequest({ ...base, images: [notBytes] })).toThrow(/Uint8Array/);
  });
});

describe('seedToWire', () => {
  it('accepts the whole unsigned 64-bit range as bigints', () => {
    expect(seedToWire(0n)).toBe('0');
    expect(seedToWire(MAX_SEED)).toBe('18446744073709551615');
    expect(seedToWire(42)).toBe('42');
  });

  it('refuses seeds outside the range, and numbers that may already have lost digits', () => {
    expect(() => seedToWire(-1n)).toThrow(RangeError);
    expect(() => seedToWire(MAX_SEED + 1n)).toThrow(/outside the unsigned 64-bit range/);
    expect(() => seedToWire(-1)).toThrow(RangeError);
    expect(() => seedToWire(1.5)).toThrow(/not a safe integer/);
    expect(() => seedToWire(2 ** 60)).toThrow(/as a bigint/);
  });
});

describe('the request on the wire', () => {
  const { requestSerialize, requestDeserialize } = clientProtos().policy.Predict;

  it('carries a seed of 2^64-1 without losing a digit', () => {
    const wire = requestSerialize(toPredictRequest({ ...base, sampling: { seed: MAX_SEED } }));
    const back = requestDeserialize(wire);
    expect(back.sampling?._seed).toBe('seed');
    expect(BigInt(back.sampling!.seed!)).toBe(MAX_SEED);
  });

  it('distinguishes an explicit seed 0 from no seed', () => {
    const zero = requestDeserialize(requestSerialize(toPredictRequest({ ...base, sampling: { seed: 0 } })));
    expect(zero.sampling?._seed).toBe('seed');
    expect(zero.sampling?.seed).toBe('0');
    const none = requestDeserialize(requestSerialize(toPredictRequest(base)));
    expect(none.sampling?._seed).toBeUndefined();
  });

  it('carries images, state and encodings as the server reads them', () => {
    const data = Uint8Array.from([1, 2, 3]);
    const back = requestDeserialize(requestSerialize(toPredictRequest({ ...base, images: [{ camera: 'wrist', encoding: 'png', data }], state: [0.25, -4] })));
    expect(back.images[0]).toMatchObject({ camera: 'wrist', encoding: 'IMAGE_ENCODING_PNG' });
    expect(Array.from(back.images[0].data)).toEqual([1, 2, 3]);
    expect(back.state).toEqual([0.25, -4]);
  });
});

describe('toPredictRequest prefix (real-time chunking)', () => {
  it('encodes the committed actions as an [L, action_dim] tensor, the delay and the method', () => {
    const req = toPredictRequest({
      ...base,
      prefix: {
        actions: [
          [1, 2],
          [3, 4],
          [5, 6],
        ],
        delaySteps: 2,
        method: 'ensemble',
      },
    });
    expect(req.prefix?.actions?.shape).toEqual([3, 2]);
    expect(Array.from(new Float32Array(new Uint8Array(req.prefix!.actions!.data as Uint8Array).buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(req.prefix).toMatchObject({ delay_steps: 2, method: 'CHUNKING_METHOD_ENSEMBLE', control_period_ms: 0 });
  });

  it('leaves the delay out (the server estimates it) when only the control period is given, and refuses neither', () => {
    const req = toPredictRequest({ ...base, prefix: { actions: [[0]], controlPeriodMs: 20 } });
    expect(req.prefix).not.toHaveProperty('delay_steps');
    expect(req.prefix).toMatchObject({ control_period_ms: 20, method: 'CHUNKING_METHOD_UNSPECIFIED' });
    expect(() => toPredictRequest({ ...base, prefix: { actions: [[0]] } })).toThrow(/delaySteps, or controlPeriodMs/);
    expect(() => toPredictRequest({ ...base, prefix: { actions: [[0], [1, 2]], delaySteps: 0 } })).toThrow(/rows must all have 1 values/);
    expect(() => toPredictRequest({ ...base, prefix: { actions: [[0]], delaySteps: -1 } })).toThrow(/prefix.delaySteps/);
  });

  it('survives the wire: the server sees the delay as present, a delay of 0 included', () => {
    const { requestSerialize, requestDeserialize } = clientProtos().policy.Predict;
    const req = toPredictRequest({ ...base, prefix: { actions: [[0.5]], delaySteps: 0 } });
    const back = requestDeserialize(requestSerialize(req));
    expect(back.prefix).toMatchObject({ delay_steps: 0, _delay_steps: 'delay_steps' });
  });
});
