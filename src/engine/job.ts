/**
 * A request as the engine sees it: preprocessed tensors, its step budget and its deadline. Built by the API
 * edge after validation; everything here is already checked.
 */
import type { PixelRow } from '../preprocess/index.js';
import type { ChunkingMethod, InitialNoise } from '../sampling/index.js';

export interface JobInput {
  readonly requestId: string;
  readonly robotId: string;
  readonly embodimentId: number;
  /** One request's pixel_values row: [V, 3, H, W], of the model's pixel type (float32 normalized, or uint8). */
  readonly pixelValues: PixelRow;
  /** [L] token ids and mask, padded to the manifest's max_tokens. */
  readonly inputIds: BigInt64Array;
  readonly attentionMask: BigInt64Array;
  /** Normalized state, zero-padded to the model's state dim. */
  readonly state: Float32Array;
  readonly noise: InitialNoise;
  /** N_A. */
  readonly actionSteps: number;
  /** N_o without a budget; the upper bound for N_o with one. */
  readonly visionSteps: number;
  /** 0 = no budget; else the scheduler picks N_o to finish within it (counted from `receivedAt`). */
  readonly budgetMs: number;
  /** When the server received the request, on the scheduler's clock. */
  readonly receivedAt: number;
  /**
   * Absolute time on the scheduler's clock after which the result is useless: the gRPC deadline, or the end of a
   * strict budget when that comes first (admission.ts requestDeadline).
   */
  readonly deadline: number;
  /** What set `deadline`, for the words of a DEADLINE_EXCEEDED. @default 'call' */
  readonly deadlineSource?: DeadlineSource;
  /**
   * The budget is a limit, not only a request for scaling: a row whose planner finds that even N_A steps miss it
   * is shed when it joins the denoiser stage, before any step runs. @default false
   */
  readonly strictBudget?: boolean;
  /** Aborted when the client cancels: the job leaves at the next step. */
  readonly signal?: AbortSignal;
  /**
   * Opaque to the engine and kept on the main thread: handed back in the reports of the executor calls this
   * job took part in (batch-report.ts), so telemetry can link batch spans to the request.
   */
  readonly traceTag?: unknown;
  /**
   * 'shadow': a mirrored request (shadow traffic, experiment/shadow-mirror.ts), below every primary request: admitted only while
   * no primary request waits, picked after primaries, and evicted first when the queue fills. @default 'primary'
   */
  readonly priority?: JobPriority;
  /** The committed prefix (docs/sampling.md, "Real-time chunking"); absent = none. */
  readonly chunking?: JobChunking;
}

/** A committed prefix in the sampler's space. */
export interface JobChunking {
  readonly method: ChunkingMethod;
  /** Y: normalized, padded, [horizon, actionDim], zero beyond the prefix. */
  readonly target: Float32Array;
  /** W: one weight per horizon position. */
  readonly weights: Float32Array;
}

export type JobPriority = 'primary' | 'shadow';

/** 'call': the gRPC deadline; 'budget': a strict latency budget (docs/api.md, SamplingOptions). */
export type DeadlineSource = 'call' | 'budget';

/** What a request's deadline is, in the words of its DEADLINE_EXCEEDED. */
export function deadlineName(source: DeadlineSource | undefined): string {
  return source === 'budget' ? 'strict latency budget' : 'deadline';
}

/** What a robot refused for its strict budget can do, the end of every such DEADLINE_EXCEEDED. */
export const STRICT_BUDGET_ADVICE =
  'keep executing the current chunk and ask again, raise latency_budget_ms, or send without strict_budget to be answered late';

export interface JobTiming {
  readonly queueMs: number;
  readonly vlmMs: number;
  readonly denoiseMs: number;
  readonly totalMs: number;
  readonly vlmBatchSize: number;
  readonly meanDenoiseBatch: number;
}

export interface BudgetPlanReport {
  /** Whether even N_o = N_A was predicted to fit the budget (false: the row ran N_A and missed on purpose). */
  readonly feasible: boolean;
  /** The planner's predicted time from receipt to the response being ready, for the N_o it chose. */
  readonly plannedTotalMs: number;
}

export interface JobResult {
  /** Normalized, padded actions [horizon, actionDim]; the edge denormalizes and unpads. */
  readonly actions: Float32Array;
  /** Predicted future-observation embedding [futureTokens, futureDim]. */
  readonly future: Float32Array;
  /** The current main-camera embedding from the VLM [futureTokens, futureDim]. */
  readonly obsEmbedding: Float32Array;
  readonly actionSteps: number;
  /** N_o actually used. */
  readonly visionSteps: number;
  /** The budget planner's verdict when the row joined the denoiser stage; undefined without a budget. */
  readonly budget: BudgetPlanReport | undefined;
  readonly timing: JobTiming;
}
