import { describe, expect, it } from 'vitest';
import type { PredictResponse__Output } from './gen/dust/serving/v1/PredictResponse.js';
import { fromListModelsResponse, toReportOutcomeRequest } from './models.js';
import { clientProtos } from './protos.js';
import { actionRows, fromPredictResponse } from './response.js';
import { encodeTensor } from './tensor.js';

function tensor(shape: number[], values: number[]): { shape: number[]; data: Buffer } {
  return { shape, data: Buffer.from(encodeTensor(shape, values).data) };
}

const response: PredictResponse__Output = {
  request_id: 'req',
  model_name: 'dust-tiny',
  model_version: 1,
  variant: 'control',
  actions: tensor([2, 3], [1, 2, 3, 4, 5, 6]),
  future_embedding: null,
  sampling: { action_steps: 4, vision_steps: 8, seed: '18446744073709551615', budget_ms: 0, budget_met: true, budget_feasible: true, planned_total_ms: 0 },
  timing: { queue_ms: 1, vlm_ms: 2, denoise_ms: 3, total_ms: 6, vlm_batch_size: 1, mean_denoise_batch: 1.5, preprocess_ms: 0.5 },
  chunking: null,
};

describe('fromPredictResponse', () => {
  it('decodes the action chunk, the report with a bigint seed, and the timing', () => {
    const r = fromPredictResponse(response);
    expect(r).toMatchObject({ requestId: 'req', modelName: 'dust-tiny', modelVersion: 1, variant: 'control' });
    expect(actionRows(r).map((row) => Array.from(row))).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(r.sampling).toEqual({
      actionSteps: 4,
      visionSteps: 8,
      seed: 18446744073709551615n,
      budgetMs: 0,
      budgetMet: true,
      budgetFeasible: true,
      plannedTotalMs: 0,
    });
    expect(r.timing).toEqual({ queueMs: 1, vlmMs: 2, denoiseMs: 3, totalMs: 6, vlmBatchSize: 1, meanDenoiseBatch: 1.5, preprocessMs: 0.5 });
    expect(r.futureEmbedding).toBeUndefined();
    expect(r).not.toHaveProperty('worldModelSurprise');
  });

  it('decodes the future embedding when present', () => {
    const r = fromPredictResponse({ ...response, future_embedding: tensor([2, 2], [0.5, 0.25, -1, 2]) });
    expect(r.futureEmbedding?.shape).toEqual([2, 2]);
    expect(Array.from(r.futureEmbedding!.data)).toEqual([0.5, 0.25, -1, 2]);
  });

  it('keeps a world-model surprise of exactly 0, which proto3 optional marks as present', () => {
    const r = fromPredictResponse({ ...response, world_model_surprise: 0, _world_model_surprise: 'world_model_surprise' });
    expect(r.worldModelSurprise).toBe(0);
  });

  it('refuses a response whose tensor bytes do not match its shape', () => {
    expect(() => fromPredictResponse({ ...response, actions: { shape: [2, 4], data: Buffer.alloc(8) } })).toThrow(/needs 32 bytes/);
    expect(() => fromPredictResponse({ ...response, actions: null })).toThrow(/no actions/);
  });

  it('reads a response the way it comes off the wire', () => {
    const { responseSerialize, responseDeserialize } = clientProtos().policy.Predict;
    const wire = responseSerialize({ ...response, world_model_surprise: 0.125 });
    const r = fromPredictResponse(responseDeserialize(wire));
    expect(r.sampling.seed).toBe(2n ** 64n - 1n);
    expect(r.worldModelSurprise).toBe(0.125);
    expect(r.futureEmbedding).toBeUndefined();
    expect(Array.from(r.actions.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('fromListModelsResponse', () => {
  it('names states without their prefix and embodiments in camelCase', () => {
    const { responseSerialize, responseDeserialize } = clientProtos().policy.ListModels;
    const wire = responseSerialize({
      default_model: 'dust-tiny',
      models: [
        {
          name: 'dust-tiny',
          version: 2,
          state: 'MODEL_STATE_FAILED',
          reason: 'onnx file missing',
          embodiments: [{ name: 'franka', id: 0, state_dim: 8, action_dim: 7 }],
          cameras: ['wrist', 'top'],
          image_height: 224,
          image_width: 224,
          traffic_weight: 0.25,
        },
        { name: 'dust-tiny', version: 3, state: 7 as never },
      ],
    });
    const list = fromListModelsResponse(responseDeserialize(wire));
    expect(list.defaultModel).toBe('dust-tiny');
    expect(list.models[0]).toMatchObject({
      version: 2,
      state: 'FAILED',
      reason: 'onnx file missing',
      embodiments: [{ name: 'franka', id: 0, stateDim: 8, actionDim: 7 }],
      cameras: ['wrist', 'top'],
      imageHeight: 224,
      trafficWeight: 0.25,
    });
    // A state added to the proto after this client was built.
    expect(list.models[1].state).toBe('UNSPECIFIED');
  });
});

describe('toReportOutcomeRequest', () => {
  it('sends a reward only when one was given', () => {
    const { requestSerialize, requestDeserialize } = clientProtos().policy.ReportOutcome;
    const without = requestDeserialize(requestSerialize(toReportOutcomeRequest({ robotId: 'r', episodeId: 'e', success: true })));
    expect(without).toMatchObject({ robot_id: 'r', episode_id: 'e', success: true });
    expect(without._reward).toBeUndefined();
    const zero = requestDeserialize(requestSerialize(toReportOutcomeRequest({ robotId: 'r', episodeId: 'e', success: false, reward: 0 })));
    expect(zero._reward).toBe('reward');
    expect(zero.reward).toBe(0);
  });
});

describe('fromPredictResponse chunking', () => {
  it('reports how the prefix was used, and nothing without one', () => {
    expect(fromPredictResponse(response).chunking).toBeUndefined();
    const r = fromPredictResponse({
      ...response,
      chunking: { method: 'CHUNKING_METHOD_INPAINT', delay_steps: 3, delay_estimated: true, prefix_length: 8 },
    });
    expect(r.chunking).toEqual({ method: 'inpaint', delaySteps: 3, delayEstimated: true, prefixLength: 8 });
  });
});
