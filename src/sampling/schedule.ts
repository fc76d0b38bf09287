/**
 * Asynchronous joint sampling schedule (docs/sampling.md, "Asynchronous joint sampling";
 * paper eq. 5, Algorithm 2). Pure: step i of a request with N_A action steps and q vision steps per action
 * step, N_o = q * N_A, is fully described by a StepPlan, so rows at different i with different q and N_A
 * can share one denoiser call.
 */

/** What one denoiser evaluation does to one request's row. */
export interface StepPlan {
  /** Action flow time fed to the model: floor(i / q) / N_A, the action's true noise level. */
  readonly tauA: number;
  /** Vision flow time fed to the model: i / N_o. */
  readonly tauO: number;
  /** Vision Euler step size: O <- O + dtO * v_O, every evaluation (1 / N_o). */
  readonly dtO: number;
  /** Action Euler step size: 1 / N_A at the last evaluation of each block of q, else 0. */
  readonly dtA: number;
}

export interface StepCounts {
  /** N_A >= 1. */
  readonly actionSteps: number;
  /** N_o = q * N_A. */
  readonly visionSteps: number;
}

/** q = N_o / N_A; callers validate first (see stepCountProblem). */
export function ratio(counts: StepCounts): number {
  return counts.visionSteps / counts.actionSteps;
}

export function stepPlan(i: number, counts: StepCounts): StepPlan {
  const { actionSteps, visionSteps } = counts;
  const q = visionSteps / actionSteps;
  const blockEnd = (i + 1) % q === 0;
  return {
    tauA: Math.floor(i / q) / actionSteps,
    tauO: i / visionSteps,
    dtO: 1 / visionSteps,
    dtA: blockEnd ? 1 / actionSteps : 0,
  };
}

/**
 * Why a step-count pair is not a valid schedule, or undefined when it is. The message is written for the
 * client (it becomes INVALID_ARGUMENT details).
 */
export function stepCountProblem(counts: StepCounts, maxVisionSteps: number): string | undefined {
  const { actionSteps: na, visionSteps: no } = counts;
  if (!Number.isInteger(na) || na < 1) return `action_steps must be an integer >= 1, got ${na}`;
  if (!Number.isInteger(no) || no < 1) return `vision_steps must be an integer >= 1, got ${no}`;
  if (no > maxVisionSteps) {
    return `vision_steps ${no} exceeds this model's max_vision_steps ${maxVisionSteps}`;
  }
  if (no < na || no % na !== 0) {
    return `vision_steps (N_o = ${no}) must be a multiple of action_steps (N_A = ${na}): N_o = q * N_A with q >= 1`;
  }
  return undefined;
}

/**
 * Euler update of one row after an evaluation (docs/sampling.md pseudocode): O += dtO * v_O on every evaluation;
 * A += dtA * v_A only where dtA > 0. Operates in place on the row's slices.
 */
export function applyStep(
  plan: Pick<StepPlan, 'dtA' | 'dtO'>,
  actions: Float32Array,
  future: Float32Array,
  vActions: Float32Array,
  vFuture: Float32Array,
): void {
  for (let j = 0; j < future.length; j++) future[j] += plan.dtO * vFuture[j];
  if (plan.dtA > 0) {
    for (let j = 0; j < actions.length; j++) actions[j] += plan.dtA * vActions[j];
  }
}
