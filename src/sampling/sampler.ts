/**
 * The whole asynchronous joint sampler for one request over any denoiser f (docs/sampling.md,
 * "Asynchronous joint sampling"). The serving engine runs the same schedule one step at a time across many
 * rows; this sequential form is the reference the engine and the golden vectors are checked against.
 */
import { applyStep, stepPlan, type StepCounts } from './schedule.js';

export interface Velocity {
  readonly vActions: Float32Array;
  readonly vFuture: Float32Array;
}

/** One denoiser evaluation at the given flow times on the current (A, O). */
export type Denoise = (actions: Float32Array, future: Float32Array, tauA: number, tauO: number) => Promise<Velocity>;

export interface SampleResult {
  readonly actions: Float32Array;
  readonly future: Float32Array;
  /** Always N_o: the number of denoiser evaluations made. */
  readonly evaluations: number;
}

export async function sampleJoint(f: Denoise, actions0: Float32Array, future0: Float32Array, counts: StepCounts): Promise<SampleResult> {
  const actions = Float32Array.from(actions0);
  const future = Float32Array.from(future0);
  for (let i = 0; i < counts.visionSteps; i++) {
    const plan = stepPlan(i, counts);
    const v = await f(actions, future, plan.tauA, plan.tauO);
    applyStep(plan, actions, future, v.vActions, v.vFuture);
  }
  return { actions, future, evaluations: counts.visionSteps };
}
