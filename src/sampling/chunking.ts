/**
 * Real-time chunking (docs/sampling.md, "Real-time chunking"; Black, Galliker and Levine, "Real-Time Execution of
 * Action Chunking Flow Policies", 2025). Pure. A request may carry the committed prefix Y: the L actions of the
 * chunk the robot is executing that overlap the new chunk, of which the first d (the inference delay) run before
 * the new chunk can take over. Positions are weighted by a mask W over the horizon, and the methods differ in
 * where the mask is applied:
 *
 * - inpaint: after every action Euler step, to flow time tau', the row's actions are pulled towards Y noised to
 *   tau' with the row's own initial noise (guidance-free replacement; RTC guides with a vector-Jacobian product
 *   instead). W is RTC's soft mask: hard on the first d positions, exponentially decaying over the
 *   rest of the overlap, 0 beyond it.
 * - ensemble: the final chunk is averaged with Y over the overlap (temporal ensembling of two chunks, equal
 *   weights), the first d positions taken from Y.
 * - naive: the prefix is checked and reported, and the chunk is sampled as without one.
 * - condition: for a model trained with prefix conditioning (training-time action conditioning), the first d
 *   positions are given as the clean Y at flow time 1 in every denoiser call (the denoiser's per-position
 *   `action_times`), and the model generates the rest to continue them. No mask beyond d: the model decides.
 */

export const CHUNKING_METHODS = ['condition', 'inpaint', 'naive', 'ensemble'] as const;
export type ChunkingMethod = (typeof CHUNKING_METHODS)[number];
/** The methods the sampler applies to any model; `condition` needs a model trained for it. */
export const GUIDANCE_FREE_METHODS: readonly ChunkingMethod[] = ['inpaint', 'naive', 'ensemble'];

/**
 * RTC's soft mask over a horizon of `horizon` positions for a delay of `delay` and an overlap of `overlap`
 * committed actions (RTC's H - s): 1 for i < d; c_i (e^{c_i} - 1) / (e - 1) with c_i = (L - i) / (L - d + 1) for
 * d <= i < L; 0 for i >= L.
 */
export function inpaintWeights(horizon: number, delay: number, overlap: number): Float32Array {
  const w = new Float32Array(horizon);
  const L = Math.min(overlap, horizon);
  for (let i = 0; i < L; i++) {
    if (i < delay) {
      w[i] = 1;
    } else {
      const c = (L - i) / (L - delay + 1);
      w[i] = (c * Math.expm1(c)) / Math.expm1(1);
    }
  }
  return w;
}

/** Temporal ensembling's weights of the committed prefix: 1 for i < d, 1/2 over the rest of the overlap, 0 beyond. */
export function ensembleWeights(horizon: number, delay: number, overlap: number): Float32Array {
  const w = new Float32Array(horizon);
  const L = Math.min(overlap, horizon);
  for (let i = 0; i < L; i++) w[i] = i < delay ? 1 : 0.5;
  return w;
}

/** The committed positions of the condition method: 1 for i < d, 0 beyond (given clean, never blended). */
export function conditionWeights(horizon: number, delay: number): Float32Array {
  const w = new Float32Array(horizon);
  w.fill(1, 0, Math.min(delay, horizon));
  return w;
}

/** A row's committed prefix in the sampler's space, as the Euler update applies it. */
export interface PrefixGuide {
  /** Y: the committed actions, normalized and padded, [horizon, actionDim], zero beyond the overlap. */
  readonly target: Float32Array;
  /** W: one weight per horizon position (inpaintWeights, ensembleWeights or conditionWeights). */
  readonly weights: Float32Array;
  /** The row's initial action noise A_0 (the eps of X^tau = tau X + (1 - tau) eps), [horizon, actionDim]. */
  readonly noise: Float32Array;
  readonly actionDim: number;
  /**
   * The condition method: positions with W_i = 1 hold the clean Y_i at every step (the model reads them at flow
   * time 1), instead of inpainting's point on the path from the noise to Y.
   */
  readonly clean?: boolean;
}

/**
 * Guidance-free inpainting after an action Euler step that brought the row to flow time `tau` (in place):
 * A_i <- (1 - W_i) A_i + W_i (tau Y_i + (1 - tau) eps_i). At tau = 1 the hard positions equal Y exactly.
 * For a clean guide (condition) the committed positions are reset to Y (pinCommitted), whatever the model's velocity
 * moved them by.
 */
export function inpaintStep(guide: PrefixGuide, tau: number, actions: Float32Array): void {
  if (guide.clean) {
    pinCommitted(guide, actions);
    return;
  }
  const { target, weights, noise, actionDim } = guide;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (w === 0) continue;
    for (let j = i * actionDim; j < (i + 1) * actionDim; j++) {
      const pinned = tau * target[j] + (1 - tau) * noise[j];
      actions[j] = w === 1 ? pinned : (1 - w) * actions[j] + w * pinned;
    }
  }
}

/**
 * The final chunk blended with the prefix (ensemble), in place: A_i <- (1 - W_i) clip(A_i) + W_i Y_i. The chunk is
 * clipped to [-1, 1] first, as the server clips every output before denormalizing, so that the robot receives the
 * mean of the two chunks it would have executed.
 */
export function blendPrefix(guide: Pick<PrefixGuide, 'target' | 'weights' | 'actionDim'>, actions: Float32Array): void {
  const { target, weights, actionDim } = guide;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (w === 0) continue;
    for (let j = i * actionDim; j < (i + 1) * actionDim; j++) {
      const a = actions[j] < -1 ? -1 : actions[j] > 1 ? 1 : actions[j];
      actions[j] = w === 1 ? target[j] : (1 - w) * a + w * target[j];
    }
  }
}

/**
 * The delay d the server assumes when the robot gave its control period instead: the control steps that pass
 * during the expected latency, ceil(latency / period), at most the overlap (the robot cannot execute more of the
 * old chunk than it has). Without a measured latency the whole overlap is frozen.
 */
export function estimateDelay(latencyMs: number | undefined, controlPeriodMs: number, overlap: number): number {
  if (latencyMs === undefined || !(latencyMs >= 0)) return overlap;
  return Math.min(overlap, Math.ceil(latencyMs / controlPeriodMs));
}

/**
 * The flow time of every action position for a denoiser with per-position times (`action_times`), in place into
 * `out` [horizon]: the row's tau_A, and 1 at the committed positions of a clean guide.
 */
export function positionTimes(tauA: number, guide: PrefixGuide | undefined, out: Float32Array): void {
  out.fill(tauA);
  if (!guide?.clean) return;
  for (let i = 0; i < out.length; i++) if (guide.weights[i] === 1) out[i] = 1;
}

/** Per-position times of a step whose rows have no committed positions: each row's tau_A, `horizon` times, [B, horizon]. */
export function broadcastTimes(tauA: Float32Array, horizon: number): Float32Array {
  const out = new Float32Array(tauA.length * horizon);
  tauA.forEach((t, b) => out.fill(t, b * horizon, (b + 1) * horizon));
  return out;
}

/** The condition method's committed positions (in place on A [horizon, actionDim]): those with W_i = 1 hold Y, at A_0 and after every update. */
export function pinCommitted(guide: Pick<PrefixGuide, 'target' | 'weights' | 'actionDim'>, actions: Float32Array): void {
  const { target, weights, actionDim } = guide;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 1) actions.set(target.subarray(i * actionDim, (i + 1) * actionDim), i * actionDim);
  }
}
