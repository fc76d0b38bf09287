/** PredictResponse on the wire -> the decoded result a program reads. Pure. */
import type { PredictResponse__Output } from './gen/dust/serving/v1/PredictResponse.js';
import { decodeTensor, tensorRows, type FloatTensor } from './tensor.js';
import type { ChunkingMethodName } from './request.js';

export interface SamplingReport {
  /** N_A used. */
  actionSteps: number;
  /** N_o actually used (the server may lower it to meet a latency budget). */
  visionSteps: number;
  /** The seed used: the request's, or the one the server drew. Replaying it reproduces the chunk. */
  seed: bigint;
  budgetMs: number;
  budgetMet: boolean;
  /** With a budget: whether the server's planner predicted that even N_A steps fit it. */
  budgetFeasible: boolean;
  /** With a budget: the time the planner predicted from receipt to response, in ms (0 without). */
  plannedTotalMs: number;
}

export interface Timing {
  queueMs: number;
  vlmMs: number;
  denoiseMs: number;
  totalMs: number;
  vlmBatchSize: number;
  meanDenoiseBatch: number;
  /** Receipt until the images were decoded and the prompt tokenized (part of queueMs). */
  preprocessMs: number;
}

/** How the server used the request's committed prefix (real-time chunking). */
export interface ChunkingReport {
  method: ChunkingMethodName;
  /** The delay d the server assumed. */
  delaySteps: number;
  /** Whether d was estimated from the control period and the stream's latency. */
  delayEstimated: boolean;
  /** L, the prefix's length. */
  prefixLength: number;
}

const METHODS: Record<string, ChunkingReport['method']> = {
  CHUNKING_METHOD_CONDITION: 'condition',
  CHUNKING_METHOD_INPAINT: 'inpaint',
  CHUNKING_METHOD_NAIVE: 'naive',
  CHUNKING_METHOD_ENSEMBLE: 'ensemble',
};

export interface PredictResult {
  requestId: string;
  modelName: string;
  modelVersion: number;
  /** The traffic-split variant that served the request. */
  variant: string;
  /** The action chunk, shape [horizon, action_dim], denormalized. `actionRows(result)` gives one row per step. */
  actions: FloatTensor;
  /** Shape [T_o, d_o]; only when the request set returnFutureEmbedding. */
  futureEmbedding?: FloatTensor;
  sampling: SamplingReport;
  timing: Timing;
  /** 1 - cosine(previous prediction of this episode's future embedding, this observation's embedding). */
  worldModelSurprise?: number;
  /** Set when the request carried a prefix. */
  chunking?: ChunkingReport;
}

/** The action chunk as one Float32Array per action step (views sharing the result's memory). */
export function actionRows(result: Pick<PredictResult, 'actions'>): Float32Array[] {
  return tensorRows(result.actions);
}

/** Throws a RangeError when the response's tensors are malformed. */
export function fromPredictResponse(msg: PredictResponse__Output): PredictResult {
  if (!msg.actions) throw new RangeError('response has no actions tensor');
  const s = msg.sampling;
  const t = msg.timing;
  const result: PredictResult = {
    requestId: msg.request_id,
    modelName: msg.model_name,
    modelVersion: msg.model_version,
    variant: msg.variant,
    actions: decodeTensor(msg.actions.shape, msg.actions.data),
    sampling: {
      actionSteps: s?.action_steps ?? 0,
      visionSteps: s?.vision_steps ?? 0,
      seed: BigInt(s?.seed || 0),
      budgetMs: s?.budget_ms ?? 0,
      budgetMet: s?.budget_met ?? false,
      budgetFeasible: s?.budget_feasible ?? false,
      plannedTotalMs: s?.planned_total_ms ?? 0,
    },
    timing: {
      queueMs: t?.queue_ms ?? 0,
      vlmMs: t?.vlm_ms ?? 0,
      denoiseMs: t?.denoise_ms ?? 0,
      totalMs: t?.total_ms ?? 0,
      vlmBatchSize: t?.vlm_batch_size ?? 0,
      meanDenoiseBatch: t?.mean_denoise_batch ?? 0,
      preprocessMs: t?.preprocess_ms ?? 0,
    },
  };
  // An absent tensor arrives as null (loader option `defaults`); a present one always has a shape.
  if (msg.future_embedding && msg.future_embedding.shape.length > 0) {
    result.futureEmbedding = decodeTensor(msg.future_embedding.shape, msg.future_embedding.data);
  }
  // proto3 `optional`: the loader's `oneofs` option marks presence, so a surprise of exactly 0 is kept.
  if (msg._world_model_surprise === 'world_model_surprise' && msg.world_model_surprise !== undefined) {
    result.worldModelSurprise = msg.world_model_surprise;
  }
  const c = msg.chunking;
  if (c) {
    const method = METHODS[String(c.method)];
    if (!method) throw new RangeError(`response has an unknown chunking method ${String(c.method)}`);
    result.chunking = { method, delaySteps: c.delay_steps, delayEstimated: c.delay_estimated, prefixLength: c.prefix_length };
  }
  return result;
}
