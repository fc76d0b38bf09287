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
