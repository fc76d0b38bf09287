import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { readPackage, type ModelHandle } from '../model/index.js';
import type { ModelRuntime } from './model-runtime.js';
import { validateRequest, type PredictInput } from './predict.js';

const TINY = path.resolve('models/dust-tiny/1');

let handle: ModelHandle<ModelRuntime>;
beforeAll(async () => {
  const pkg = await readPackage({ name: 'dust-tiny', version: 1, dir: TINY });
  // validateRequest reads only the manifest: nothing of the runtime runs before admission.
  handle = { name: 'dust-tiny', version: 1, manifest: pkg.manifest, runtime: undefined as unknown as ModelRuntime };
});

const raw = (camera: string, width = 64, height = 64) => ({ camera, encoding: 'RAW_RGB8' as const, width, height, data: new Uint8Array(width * height * 3) });

function input(over: Partial<PredictInput> = {}): PredictInput {
  return {
    requestId: 'r',
    robotId: 'robot-1',
    episodeId: '',
    embodiment: 'franka_fr3',
    images: [raw('front'), raw('wrist')],
    state: new Array(8).fill(0),
    instruction: 'push the ball',
    actionSteps: 0,
    visionSteps: 0,
    seed: undefined,
    latencyBudgetMs: 0,
    returnFutureEmbedding: false,
    ...over,
  };
}

describe('validateRequest: refusals that come before admission', () => {
  it('accepts a valid request', () => {
    expect(validateRequest(handle, input()).requestId).toBe('r');
  });

  // Each of these used to be found only while decoding, after the request had taken a place in the queue.
  it.each([
    ['a missing camera', { images: [raw('front')] }, /expected 2 images, one per camera \[front, wrist\]/],
    ['an unknown camera', { images: [raw('front'), raw('side')] }, /unknown camera "side"/],
    ['RAW_RGB8 of the wrong length', { images: [raw('front'), { ...raw('wrist'), data: new Uint8Array(7) }] }, /expected width\*height\*3/],
    ['an image over the pixel limit', { images: [raw('front'), { ...raw('wrist', 5000, 5000), data: new Uint8Array(3) }] }, /exceeds the limit/],
    [
      'a JPEG that is not one',
      { images: [raw('front'), { camera: 'wrist', encoding: 'JPEG' as const, width: 0, height: 0, data: new Uint8Array([1, 2, 3, 4]) }] },
      /not a JPEG image \(wrong signature\)/,
    ],
    [
      'UNSPECIFIED encoding',
      { images: [raw('front'), { camera: 'wrist', encoding: 'UNSPECIFIED' as const, width: 0, height: 0, data: new Uint8Array(3) }] },
      /encoding is UNSPECIFIED/,
    ],
  ])('refuses %s with INVALID_ARGUMENT saying what to fix', (_, over, message) => {
    expect(() => validateRequest(handle, input(over))).toThrow(InvalidArgumentError);
    expect(() => validateRequest(handle, input(over))).toThrow(message);
  });
});

describe('validateRequest: the committed prefix (real-time chunking)', () => {
  const H = 16;
  const dim = 8;
  const prefix = (over: Partial<NonNullable<PredictInput['prefix']>> = {}): NonNullable<PredictInput['prefix']> => ({
    shape: [4, dim],
    actions: new Float32Array(4 * dim).fill(0.5),
    delaySteps: 2,
    controlPeriodMs: 0,
    method: undefined,
    ...over,
  });

  it('resolves the default method (inpaint), the delay, and the prefix normalized and padded to the model', () => {
    const c = validateRequest(handle, input({ prefix: prefix() })).chunking!;
    expect(c).toMatchObject({ method: 'inpaint', delaySteps: 2, delayEstimated: false, prefixLength: 4 });
    expect(c.target).toHaveLength(H * 32);
    const { min, max } = handle.manifest.embodiments.franka_fr3.normalization.action;
    // The inverse of the server's denormalization, clipped to [-1, 1]; padding columns and positions beyond L are 0.
    expect(c.target[1]).toBeCloseTo(Math.max(-1, Math.min(1, (2 * (0.5 - min[1])) / (max[1] - min[1]) - 1)), 6);
    expect(c.target[dim]).toBe(0);
    expect(c.target[4 * 32]).toBe(0);
    expect(Array.from(c.weights.subarray(0, 2))).toEqual([1, 1]);
    expect(c.weights[4]).toBe(0);
  });

  it('estimates d from the control period and the stream latency, or freezes the whole prefix without a measure', () => {
    const p = prefix({ delaySteps: undefined, controlPeriodMs: 20 });
    expect(validateRequest(handle, input({ prefix: p, streamLatencyMs: 45 })).chunking).toMatchObject({ delaySteps: 3, delayEstimated: true });
    expect(validateRequest(handle, input({ prefix: p })).chunking).toMatchObject({ delaySteps: 4, delayEstimated: true });
  });

  it.each([
    ['a wrong action_dim', { shape: [4, 7], actions: new Float32Array(28) }, /shape \[L, 8\] \(the embodiment's action_dim\) with 1 <= L <= 16/],
    ['more rows than the horizon', { shape: [17, dim], actions: new Float32Array(17 * dim) }, /1 <= L <= 16/],
    ['an empty prefix', { shape: [0, dim], actions: new Float32Array(0) }, /1 <= L <= 16/],
    ['data that does not match its shape', { actions: new Float32Array(3) }, /holds 3 float32 values, its shape \[4, 8\] needs 32/],
    ['a non-finite value', { actions: new Float32Array(4 * dim).fill(Number.NaN) }, /prefix.actions\[0\]\[0\] is NaN/],
    ['a delay beyond the prefix', { delaySteps: 5 }, /delay_steps 5 exceeds the prefix length 4/],
    ['a delay beyond the horizon', { delaySteps: 17 }, /delay_steps 17 exceeds the action horizon 16/],
    ['neither a delay nor a control period', { delaySteps: undefined }, /set delay_steps, or control_period_ms > 0/],
  ])('refuses %s with INVALID_ARGUMENT saying what to fix', (_, over, message) => {
    expect(() => validateRequest(handle, input({ prefix: prefix(over) }))).toThrow(InvalidArgumentError);
    expect(() => validateRequest(handle, input({ prefix: prefix(over) }))).toThrow(message);
  });

  it('refuses a method the package does not declare, and any prefix where it declares none', () => {
    const only = { ...handle, manifest: { ...handle.manifest, realtime_chunking: ['naive' as const] } };
    expect(() => validateRequest(only, input({ prefix: prefix({ method: 'inpaint' }) }))).toThrow(
      /prefix.method inpaint is not supported by dust-tiny@1; it supports: naive/,
    );
    expect(validateRequest(only, input({ prefix: prefix() })).chunking!.method).toBe('naive');
    const none = { ...handle, manifest: { ...handle.manifest, realtime_chunking: [] } };
    expect(() => validateRequest(none, input({ prefix: prefix() }))).toThrow(/does not support real-time chunking/);
  });

  it('offers condition only to a package trained for it, and makes it the default there, committing exactly d positions', () => {
    expect(() => validateRequest(handle, input({ prefix: prefix({ method: 'condition' }) }))).toThrow(
      /prefix.method condition is not supported by dust-tiny@1; it supports: inpaint, naive, ensemble/,
    );
    const trained = { ...handle, manifest: { ...handle.manifest, realtime_chunking: ['condition' as const, 'inpaint' as const] } };
    const c = validateRequest(trained, input({ prefix: prefix() })).chunking!;
    expect(c).toMatchObject({ method: 'condition', delaySteps: 2 });
    expect(Array.from(c.weights.subarray(0, 4))).toEqual([1, 1, 0, 0]);
    expect(validateRequest(trained, input({ prefix: prefix({ method: 'inpaint' }) })).chunking!.method).toBe('inpaint');
  });
});

describe('validateRequest: the step counts of an action-only package (no future stream)', () => {
  // dust-tiny's sizes without `future`, as parseManifest records a manifest without one: N_o = N_A = 4, and at most
  // 16 action steps a request.
  const only = () => ({
    ...handle,
    manifest: { ...handle.manifest, future: { tokens: 0, dim: 0 }, sampling: { action_steps: 4, vision_steps: 4, max_vision_steps: 16 } },
  });
  const counts = (over: Partial<PredictInput>) => validateRequest(only(), input(over)).counts;

  it('runs N_o = N_A, with a latency budget too (a DUST package would plan up to max_vision_steps)', () => {
    expect(counts({})).toEqual({ actionSteps: 4, visionSteps: 4 });
    expect(counts({ latencyBudgetMs: 1000 })).toEqual({ actionSteps: 4, visionSteps: 4 });
    expect(counts({ actionSteps: 2, latencyBudgetMs: 1000 })).toEqual({ actionSteps: 2, visionSteps: 2 });
    expect(counts({ actionSteps: 2, visionSteps: 2 })).toEqual({ actionSteps: 2, visionSteps: 2 });
    // max_vision_steps bounds the action steps: more than the default up to it, then refused as for any package.
    expect(counts({ actionSteps: 16, latencyBudgetMs: 1000 })).toEqual({ actionSteps: 16, visionSteps: 16 });
    expect(() => counts({ actionSteps: 32 })).toThrow(/action_steps 32 exceeds this model's max_vision_steps 16/);
    expect(validateRequest(handle, input({ latencyBudgetMs: 1000 })).counts.visionSteps).toBe(handle.manifest.sampling.max_vision_steps);
  });

  it('refuses vision steps above the action steps, saying vision_steps is 0 or action_steps', () => {
    for (const over of [{ visionSteps: 8 }, { actionSteps: 2, visionSteps: 4 }, { actionSteps: 2, visionSteps: 4, latencyBudgetMs: 1000 }]) {
      expect(() => counts(over)).toThrow(InvalidArgumentError);
      expect(() => counts(over)).toThrow(/vision_steps \d exceeds action_steps \d: this model has no future stream, so vision_steps is 0 or action_steps/);
    }
    // Below N_A is refused as for any package.
    expect(() => counts({ visionSteps: 2 })).toThrow(/must be a multiple of action_steps/);
  });
});
