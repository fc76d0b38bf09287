/**
 * A request's committed prefix (docs/api.md, "Real-time chunking"), checked against the version that will run it
 * before admission, and turned into what the sampler applies: the prefix normalized with the embodiment's action
 * statistics (the inverse of the server's own denormalization) and padded to the model's action dim, the delay d,
 * the method and its mask (src/sampling/chunking.ts).
 */
import { InvalidArgumentError } from '../errors/index.js';
import type { EmbodimentSpec, Manifest, RealtimeChunkingMethod } from '../model/index.js';
import { normalizeActions } from '../preprocess/index.js';
import { GUIDANCE_FREE_METHODS, conditionWeights, ensembleWeights, estimateDelay, inpaintWeights, type ChunkingMethod } from '../sampling/index.js';

export interface PrefixInput {
  /** The tensor's declared shape: [L, the embodiment's action_dim]. */
  readonly shape: readonly number[];
  /** Its values, the robot's units, row-major. */
  readonly actions: Float32Array;
  /** d; undefined = estimate it from `controlPeriodMs`. */
  readonly delaySteps: number | undefined;
  readonly controlPeriodMs: number;
  /** undefined = the server's choice. */
  readonly method: ChunkingMethod | undefined;
}

/** A prefix ready for the engine. */
export interface ResolvedChunking {
  readonly method: ChunkingMethod;
  readonly delaySteps: number;
  readonly delayEstimated: boolean;
  readonly prefixLength: number;
  /** Y, normalized and padded: [horizon, action.dim], zero beyond L. */
  readonly target: Float32Array;
  /** W over the horizon; all zero for naive. */
  readonly weights: Float32Array;
}

/** Every guidance-free method: none needs training, so a package that says nothing supports them all. */
export function supportedChunking(m: Manifest): readonly RealtimeChunkingMethod[] {
  return m.realtime_chunking ?? GUIDANCE_FREE_METHODS;
}

/** The server's choice when a request names no method: the model's own conditioning, else inpainting, else the first. */
export function defaultChunking(supported: readonly RealtimeChunkingMethod[]): RealtimeChunkingMethod {
  return (['condition', 'inpaint'] as const).find((m) => supported.includes(m)) ?? supported[0];
}

/**
 * Checks a prefix (shape, values, delay, method) and resolves it; `latencyMs` is the stream's measured latency
 * (undefined on a unary Predict or a stream's first answer), used only when the delay is to be estimated.
 * @throws InvalidArgumentError saying what to fix.
 */
export function resolveChunking(m: Manifest, emb: EmbodimentSpec, p: PrefixInput, latencyMs: number | undefined): ResolvedChunking {
  const horizon = m.action.horizon;
  const dim = emb.action_dim;
  const supported = supportedChunking(m);
  if (supported.length === 0) {
    throw new InvalidArgumentError(
      `prefix: ${m.name}@${m.version} does not support real-time chunking (its manifest's realtime_chunking is empty); send the request without a prefix`,
    );
  }
  const method = p.method ?? defaultChunking(supported);
  if (!supported.includes(method)) {
    throw new InvalidArgumentError(`prefix.method ${method} is not supported by ${m.name}@${m.version}; it supports: ${supported.join(', ')}`);
  }
  const [L, cols] = p.shape;
  if (p.shape.length !== 2 || cols !== dim || !(L >= 1 && L <= horizon)) {
    throw new InvalidArgumentError(
      `prefix.actions must have shape [L, ${dim}] (the embodiment's action_dim) with 1 <= L <= ${horizon} (the action horizon), got [${p.shape.join(', ')}]`,
    );
  }
  if (p.actions.length !== L * dim) {
    throw new InvalidArgumentError(`prefix.actions holds ${p.actions.length} float32 values, its shape [${L}, ${dim}] needs ${L * dim}`);
  }
  const bad = p.actions.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new InvalidArgumentError(`prefix.actions[${Math.floor(bad / dim)}][${bad % dim}] is ${p.actions[bad]}: every value must be finite`);
  let delay: number;
  const estimated = p.delaySteps === undefined;
  if (p.delaySteps !== undefined) {
    delay = p.delaySteps;
    if (delay > horizon) throw new InvalidArgumentError(`prefix.delay_steps ${delay} exceeds the action horizon ${horizon}`);
    if (delay > L) throw new InvalidArgumentError(`prefix.delay_steps ${delay} exceeds the prefix length ${L}: send at least d committed actions`);
  } else {
    if (!(p.controlPeriodMs > 0 && Number.isFinite(p.controlPeriodMs))) {
      throw new InvalidArgumentError(`prefix: set delay_steps, or control_period_ms > 0 for the server to estimate the delay (got ${p.controlPeriodMs})`);
    }
    delay = estimateDelay(latencyMs, p.controlPeriodMs, L);
  }
  const target = new Float32Array(horizon * m.action.dim);
  target.set(normalizeActions(p.actions, L, m.action.dim, emb));
  const weights = {
    condition: () => conditionWeights(horizon, delay),
    inpaint: () => inpaintWeights(horizon, delay, L),
    ensemble: () => ensembleWeights(horizon, delay, L),
    naive: () => new Float32Array(horizon),
  }[method]();
  return { method, delaySteps: delay, delayEstimated: estimated, prefixLength: L, target, weights };
}
