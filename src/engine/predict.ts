/**
 * One prediction, from a validated domain request to a domain response: step counts, state and the images'
 * headers (checked on the event loop, they are cheap), admission (refused at once when the model cannot take it),
 * then decoding and initial noise in the decode pool and the prompt, the scheduler, and denormalization and
 * world-model surprise. The API edge converts protobuf messages to and from these types; nothing here knows gRPC.
 */
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, NotFoundError, quote } from '../errors/index.js';
import { hasFutureStream, type EmbodimentSpec, type Manifest, type ModelHandle } from '../model/index.js';
import { checkViews, denormalizeActions, normalizeState, type ImageInput } from '../preprocess/index.js';
import { stepCountProblem, type ChunkingMethod, type StepCounts } from '../sampling/index.js';
import { callerKey, requestDeadline } from './admission.js';
import { resolveChunking, type PrefixInput, type ResolvedChunking } from './chunking.js';
import type { JobPriority, JobResult, JobTiming } from './job.js';
import type { ModelRuntime } from './model-runtime.js';

export interface PredictInput {
  /** Echoed; generated when empty. */
  readonly requestId: string;
  readonly robotId: string;
  readonly episodeId: string;
  readonly embodiment: string;
  readonly images: readonly ImageInput[];
  readonly state: readonly number[];
  readonly instruction: string;
  /** 0 = manifest default. */
  readonly actionSteps: number;
  /** 0 = manifest default (or, with a budget, the model's max_vision_steps as the upper bound). */
  readonly visionSteps: number;
  readonly seed: bigint | undefined;
  /** 0 = none. */
  readonly latencyBudgetMs: number;
  /**
   * The budget is also the request's deadline (docs/api.md, SamplingOptions): a request that cannot be answered
   * within it is refused with DEADLINE_EXCEEDED instead of answered late. Needs a budget. @default false
   */
  readonly strictBudget?: boolean;
  readonly returnFutureEmbedding: boolean;
  /**
   * Actions of the episode's previous chunk the robot executed; 0 or absent = unknown. World-model surprise is
   * scored only when it is unknown or the whole horizon (surprise.ts).
   */
  readonly stepsExecuted?: number;
  /** The committed prefix (real-time chunking, docs/api.md); absent = none. */
  readonly prefix?: PrefixInput;
  /**
   * The latency measured on the request's stream (server receipt to response, a moving average); undefined on
   * a unary Predict or before a stream's first response. Only a prefix without delay_steps uses it.
   */
  readonly streamLatencyMs?: number;
}

export interface RequestContext {
  /** performance.now() when the request arrived. */
  readonly receivedAt: number;
  /** Absolute performance.now() time of the client's deadline; Infinity when none. */
  readonly deadline: number;
  readonly signal?: AbortSignal;
  /** Handed back with the reports of the batches the request ran in (JobInput.traceTag). */
  readonly traceTag?: unknown;
  /** 'shadow' for mirrored requests, which rank below every primary request. @default 'primary' */
  readonly priority?: JobPriority;
  /** The key of the credential the call carries, if any: the request's caller (admission.ts callerKey). */
  readonly credential?: string;
}

export interface PredictOutput {
  readonly requestId: string;
  readonly modelName: string;
  readonly modelVersion: number;
  readonly variant: string;
  /** Denormalized actions, [horizon, embodiment action_dim]. */
  readonly actions: Float32Array;
  readonly actionShape: readonly [number, number];
  /** The actions before denormalization, [horizon, the model's padded action.dim] (shadow divergence compares these). */
  readonly normalizedActions: Float32Array;
  /** [futureTokens, futureDim] when requested; undefined from an action-only package, which predicts none. */
  readonly futureEmbedding: Float32Array | undefined;
  readonly futureShape: readonly [number, number];
  readonly sampling: {
    readonly actionSteps: number;
    readonly visionSteps: number;
    readonly seed: bigint;
    readonly budgetMs: number;
    /**
     * Whether the response is ready within the budget (true without one). False whenever the planner found,
     * when the row joined the denoiser stage, that even N_o = N_A could not fit: the miss is decided then.
     */
    readonly budgetMet: boolean;
    /** With a budget: whether N_o = N_A was predicted to fit when the row joined (true without one). */
    readonly budgetFeasible: boolean;
    /** With a budget: the planner's predicted time from receipt to the response, for the N_o it chose (0 without). */
    readonly plannedTotalMs: number;
  };
  readonly timing: JobTiming & { readonly preprocessMs: number };
  readonly worldModelSurprise: number | undefined;
  /** How the committed prefix was used; undefined without one. */
  readonly chunking: ChunkingOutput | undefined;
}

export interface ChunkingOutput {
  readonly method: ChunkingMethod;
  readonly delaySteps: number;
  readonly delayEstimated: boolean;
  readonly prefixLength: number;
}

function embodimentOf(m: Manifest, name: string): EmbodimentSpec {
  if (!name) throw new InvalidArgumentError(`embodiment is required; this model serves: ${Object.keys(m.embodiments).join(', ')}`);
  // Own keys only: "__proto__" or "constructor" must not reach Object.prototype.
  const e = Object.hasOwn(m.embodiments, name) ? m.embodiments[name] : undefined;
  if (!e) throw new NotFoundError(`unknown embodiment ${quote(name)} for model ${m.name}@${m.version}; it serves: ${Object.keys(m.embodiments).join(', ')}`);
  return e;
}

/**
 * N_A and N_o for a request (docs/api.md SamplingOptions). Defaults come from the manifest; when only
 * action_steps is given, the manifest's q = N_o / N_A is kept. With a latency budget, vision_steps is the
 * upper bound the scheduler may spend (the model's max when 0). An action-only package has no vision steps to spend:
 * N_o = N_A, whatever the budget (docs/model-package.md, "Action-only packages").
 */
export function resolveStepCounts(m: Manifest, actionSteps: number, visionSteps: number, budgeted: boolean): StepCounts {
  const max = m.sampling.max_vision_steps;
  const na = actionSteps || m.sampling.action_steps;
  // N_o is a multiple of N_A and at most max: an N_A above max can have no valid N_o, whatever vision_steps says.
  if (na > max)
    throw new InvalidArgumentError(`sampling: action_steps ${na} exceeds this model's max_vision_steps ${max} (vision_steps is a multiple of action_steps)`);
  let no = visionSteps;
  if (!hasFutureStream(m)) {
    // A step past the action steps would only advance a future stream this model does not have, so a budget buys
    // none: it is met or missed (or, strict, refused) at N_A.
    if (no > na)
      throw new InvalidArgumentError(
        `sampling: vision_steps ${no} exceeds action_steps ${na}: this model has no future stream, so vision_steps is 0 or action_steps (its max_vision_steps, ${max}, bounds action_steps)`,
      );
    if (no === 0) no = na;
  } else if (no === 0) {
    if (budgeted) no = Math.floor(max / na) * na;
    else if (actionSteps === 0) no = m.sampling.vision_steps;
    else no = Math.min(na * (m.sampling.vision_steps / m.sampling.action_steps), Math.floor(max / na) * na);
  }
  const problem = stepCountProblem({ actionSteps: na, visionSteps: no }, max);
  if (problem) throw new InvalidArgumentError(`sampling: ${problem}`);
  return { actionSteps: na, visionSteps: no };
}

/** A request checked against the version that will run it: everything refusable without decoding is refused before admission. */
export interface ValidatedRequest {
  readonly input: PredictInput;
  /** The input's request id, or a generated one. */
  readonly requestId: string;
  readonly embodiment: EmbodimentSpec;
  readonly counts: StepCounts;
  /** The normalized state vector. */
  readonly state: Float32Array;
  /** The committed prefix, resolved; undefined without one. */
  readonly chunking: ResolvedChunking | undefined;
}

/**
 * Checks a request against a version's manifest (robot_id, embodiment, step counts, state, and every image check
 * that needs no decoding) on the event loop: these checks are cheap, and a request that fails one never takes a
 * place in the version's queue. Only data that cannot be decoded is found later, by the decode pool.
 */
export function validateRequest(handle: ModelHandle<ModelRuntime>, input: PredictInput): ValidatedRequest {
  const m = handle.manifest;
  if (!input.robotId) throw new InvalidArgumentError('robot_id is required: set it to a stable identifier of the calling robot');
  const embodiment = embodimentOf(m, input.embodiment);
  if (input.strictBudget && !(input.latencyBudgetMs > 0))
    throw new InvalidArgumentError('sampling: strict_budget needs a latency_budget_ms above 0 (the budget it makes strict)');
  const counts = resolveStepCounts(m, input.actionSteps, input.visionSteps, input.latencyBudgetMs > 0);
  const state = normalizeState(input.state, embodiment, m.state.dim, input.embodiment);
  checkViews(input.images, { cameras: m.cameras, image: m.image });
  const chunking = input.prefix && resolveChunking(m, embodiment, input.prefix, input.streamLatencyMs);
  return { input, requestId: input.requestId || randomUUID(), embodiment, counts, state, chunking };
}

/** Runs a validated request on its version: admission, the decode pool and the prompt, the scheduler, the response. */
export async function runRequest(handle: ModelHandle<ModelRuntime>, request: ValidatedRequest, ctx: RequestContext): Promise<PredictOutput> {
  const { manifest: m, runtime } = handle;
  const { input, requestId, embodiment, counts, state, chunking } = request;
  const budgetMs = input.latencyBudgetMs;
  const strictBudget = input.strictBudget === true;
  const deadline = requestDeadline(ctx.receivedAt, ctx.deadline, budgetMs, strictBudget);
  const worker = runtime.worker;
  let seed = 0n;
  let preprocessMs = 0;

  const result: JobResult = await worker.submit(
    {
      receivedAt: ctx.receivedAt,
      deadline: deadline.at,
      deadlineSource: deadline.source,
      actionSteps: counts.actionSteps,
      signal: ctx.signal,
      priority: ctx.priority,
      caller: callerKey(ctx.credential, input.robotId),
    },
    async () => {
      const [decoded, prompt] = await Promise.all([
        runtime.decoder.decode({
          images: input.images,
          spec: { cameras: m.cameras, image: m.image },
          seed: input.seed,
          noise: { actions: m.action.horizon * m.action.dim, future: m.future.tokens * m.future.dim },
        }),
        runtime.tokenizer.encode(input.instruction),
      ]);
      seed = decoded.seed;
      preprocessMs = performance.now() - ctx.receivedAt;
      return {
        requestId,
        robotId: input.robotId,
        embodimentId: embodiment.id,
        pixelValues: decoded.pixelValues,
        inputIds: prompt.inputIds,
        attentionMask: prompt.attentionMask,
        state,
        noise: decoded.noise,
        actionSteps: counts.actionSteps,
        visionSteps: counts.visionSteps,
        budgetMs,
        receivedAt: ctx.receivedAt,
        deadline: deadline.at,
        deadlineSource: deadline.source,
        strictBudget,
        signal: ctx.signal,
        traceTag: ctx.traceTag,
        priority: ctx.priority,
        chunking: chunking && { method: chunking.method, target: chunking.target, weights: chunking.weights },
      };
    },
  );

  const executed = input.stepsExecuted ?? 0;
  const surprise =
    input.episodeId && hasFutureStream(m)
      ? runtime.surprise.observe(input.robotId, input.episodeId, result.obsEmbedding, result.future, executed === 0 || executed === m.action.horizon)
      : undefined;
  const actions = denormalizeActions(result.actions, m.action.horizon, m.action.dim, embodiment);
  const ready = performance.now();
  worker.observeResponsePath(ready - (ctx.receivedAt + result.timing.totalMs));
  const plan = result.budget;
  return {
    requestId,
    modelName: handle.name,
    modelVersion: handle.version,
    variant: `${handle.name}@${handle.version}`,
    actions,
    actionShape: [m.action.horizon, embodiment.action_dim],
    normalizedActions: result.actions,
    futureEmbedding: input.returnFutureEmbedding && hasFutureStream(m) ? result.future : undefined,
    futureShape: [m.future.tokens, m.future.dim],
    sampling: {
      actionSteps: result.actionSteps,
      visionSteps: result.visionSteps,
      seed,
      budgetMs,
      budgetMet: budgetMs <= 0 || (plan?.feasible !== false && ready - ctx.receivedAt <= budgetMs),
      budgetFeasible: plan?.feasible ?? true,
      plannedTotalMs: plan?.plannedTotalMs ?? 0,
    },
    timing: { ...result.timing, preprocessMs },
    worldModelSurprise: surprise,
    chunking: chunking && {
      method: chunking.method,
      delaySteps: chunking.delaySteps,
      delayEstimated: chunking.delayEstimated,
      prefixLength: chunking.prefixLength,
    },
  };
}
