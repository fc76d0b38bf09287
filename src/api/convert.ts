/** Protobuf messages <-> engine domain types. Pure. */
import type { PredictInput, PredictOutput, PrefixInput } from '../engine/index.js';
import type { ChunkingMethod } from '../sampling/index.js';
import type { CommittedPrefix__Output } from '@dust-serve/client/gen/dust/serving/v1/CommittedPrefix';
import type { ImageInput } from '../preprocess/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';

const ENCODINGS: ReadonlyMap<string, ImageInput['encoding']> = new Map([
  ['IMAGE_ENCODING_UNSPECIFIED', 'UNSPECIFIED'],
  ['IMAGE_ENCODING_RAW_RGB8', 'RAW_RGB8'],
  ['IMAGE_ENCODING_JPEG', 'JPEG'],
  ['IMAGE_ENCODING_PNG', 'PNG'],
]);

const METHODS: ReadonlyMap<string, ChunkingMethod | undefined> = new Map([
  ['CHUNKING_METHOD_UNSPECIFIED', undefined],
  ['CHUNKING_METHOD_CONDITION', 'condition'],
  ['CHUNKING_METHOD_INPAINT', 'inpaint'],
  ['CHUNKING_METHOD_NAIVE', 'naive'],
  ['CHUNKING_METHOD_ENSEMBLE', 'ensemble'],
]);

/** A method as the proto's ChunkingMethod names it. */
export const CHUNKING_METHOD_NAMES = {
  condition: 'CHUNKING_METHOD_CONDITION',
  inpaint: 'CHUNKING_METHOD_INPAINT',
  naive: 'CHUNKING_METHOD_NAIVE',
  ensemble: 'CHUNKING_METHOD_ENSEMBLE',
} as const satisfies Record<ChunkingMethod, string>;

/** The prefix message as the engine checks it (resolveChunking): its tensor decoded, its shape as declared. */
function toPrefixInput(p: CommittedPrefix__Output): PrefixInput {
  const data = p.actions?.data ?? Buffer.alloc(0);
  if (data.length % 4 !== 0) throw new InvalidArgumentError(`prefix.actions.data has ${data.length} bytes: float32 little-endian values take 4 bytes each`);
  const actions = new Float32Array(data.length / 4);
  for (let i = 0; i < actions.length; i++) actions[i] = data.readFloatLE(i * 4);
  const method = String(p.method);
  if (!METHODS.has(method)) throw new InvalidArgumentError(`prefix.method ${method} is unknown; use one of ${[...METHODS.keys()].join(', ')}`);
  return {
    shape: p.actions?.shape ?? [],
    actions,
    delaySteps: p._delay_steps === 'delay_steps' ? p.delay_steps : undefined,
    controlPeriodMs: p.control_period_ms,
    method: METHODS.get(method),
  };
}

export function toPredictInput(req: PredictRequest__Output, streamLatencyMs?: number): PredictInput {
  const s = req.sampling;
  let seed: bigint | undefined;
  if (s && s._seed === 'seed' && s.seed !== undefined && s.seed !== null) {
    try {
      seed = BigInt(s.seed);
    } catch {
      throw new InvalidArgumentError(`sampling.seed ${String(s.seed)} is not an unsigned 64-bit integer`);
    }
  }
  return {
    requestId: req.request_id,
    robotId: req.robot_id,
    episodeId: req.episode_id,
    embodiment: req.embodiment,
    images: req.images.map((img) => ({
      camera: img.camera,
      // Unknown enum numbers arrive as numbers; treat them like UNSPECIFIED so the client is told the valid ones.
      encoding: ENCODINGS.get(String(img.encoding)) ?? 'UNSPECIFIED',
      width: img.width,
      height: img.height,
      data: img.data,
    })),
    state: req.state,
    instruction: req.instruction,
    actionSteps: s?.action_steps ?? 0,
    visionSteps: s?.vision_steps ?? 0,
    seed,
    latencyBudgetMs: s?.latency_budget_ms ?? 0,
    strictBudget: s?.strict_budget ?? false,
    returnFutureEmbedding: req.return_future_embedding,
    stepsExecuted: req.steps_executed,
    ...(req.prefix ? { prefix: toPrefixInput(req.prefix), streamLatencyMs } : {}),
  };
}

/** float32 little-endian, row-major (docs/api.md Tensor). */
export function tensorBytes(values: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

export function toPredictResponse(out: PredictOutput): PredictResponse {
  return {
    request_id: out.requestId,
    model_name: out.modelName,
    model_version: out.modelVersion,
    variant: out.variant,
    actions: { shape: [...out.actionShape], data: tensorBytes(out.actions) },
    future_embedding: out.futureEmbedding ? { shape: [...out.futureShape], data: tensorBytes(out.futureEmbedding) } : null,
    sampling: {
      action_steps: out.sampling.actionSteps,
      vision_steps: out.sampling.visionSteps,
      seed: out.sampling.seed.toString(),
      budget_ms: out.sampling.budgetMs,
      budget_met: out.sampling.budgetMet,
      budget_feasible: out.sampling.budgetFeasible,
      planned_total_ms: out.sampling.plannedTotalMs,
    },
    timing: {
      queue_ms: out.timing.queueMs,
      vlm_ms: out.timing.vlmMs,
      denoise_ms: out.timing.denoiseMs,
      total_ms: out.timing.totalMs,
      vlm_batch_size: out.timing.vlmBatchSize,
      mean_denoise_batch: out.timing.meanDenoiseBatch,
      preprocess_ms: out.timing.preprocessMs,
    },
    ...(out.worldModelSurprise !== undefined ? { world_model_surprise: out.worldModelSurprise } : {}),
    chunking: out.chunking
      ? {
          method: CHUNKING_METHOD_NAMES[out.chunking.method],
          delay_steps: out.chunking.delaySteps,
          delay_estimated: out.chunking.delayEstimated,
          prefix_length: out.chunking.prefixLength,
        }
      : null,
  };
}
