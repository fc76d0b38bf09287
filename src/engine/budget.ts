/**
 * Latency-bounded test-time scaling: the budget planner. When a budgeted row joins the denoiser stage it
 * gets the largest N_o = q * N_A (q >= 1, N_o <= cap) whose predicted response time fits `safety` of its
 * budget, under the load expected over its whole life, without pushing a row admitted earlier past its
 * promise. Pure: plain data in, a plan out.
 *
 * The prediction simulates the coming denoiser steps one by one. The rows at step k are
 *  - the rows already in the stage that still have steps left at k (their remaining steps are known),
 *  - this row while k <= N_o,
 *  - the requests now waiting for the VLM stage and the rest of this row's VLM batch, which join at once and
 *    stay S steps,
 *  - arrivals: lambda times the time the last S steps took (each arrival stays S steps),
 * where S is the traffic's mean N_o as it will be once this row has joined: the measured moving average of
 * recent joins, moved by this row's N_o with the average's own weight. The batch never goes below the
 * steady state of that traffic (n = lambda * S * period(n)) nor below the recent mean denoiser batch (what
 * the traffic actually made, whatever the estimates say), and an N_o that would leave no steady state (the
 * executor could not keep up with the traffic's mean N_o) is not planned. So a row may take more steps than
 * the traffic's mean while there is capacity, which is how a budget gets spent at partial load (a mix of
 * N_o, larger where arrivals leave a lull), and as the mean rises towards what the executor can sustain the
 * planned batch grows and newcomers scale up less: the mean settles where plans fit their budgets. (Planning
 * as if every arrival took this row's N_o would refuse N_o = 2 N_A at anything above half of saturation,
 * even though a few rows at 2 N_A cost the others nothing.) Rows already admitted are protected by their
 * promises (below), which every later newcomer checks again. Arrival counts fluctuate (Poisson), so the
 * batch is planned at `headroom` standard deviations above the mean. A step at n rows takes the cost
 * model's step time at n, stretched by the VLM share (stepPeriodMs). The response is ready one response path
 * after the last step.
 *
 * Rows with a feasible plan hold a promise: their response is ready within their budget (their last step
 * ends by receivedAt + budget - response path). Each row plans for `safety` of its budget; the rest is
 * headroom for prediction error, which a newcomer may use but not exceed. A newcomer may scale up only while
 * every promise still holds, or, where one is already predicted to break, while it does not make that row
 * later than it would be with the newcomer at N_A (a newcomer at N_A is never refused: the budget is a
 * request for scaling, not an admission test). Rows without a budget, or whose budget could not be met even
 * at N_A, hold no promise.
 *
 * When even N_o = N_A is predicted to miss the budget the plan says so at once (feasible = false): the row
 * runs N_A steps and its response reports budget_met = false.
 *
 * A strict budget (docs/api.md, strict_budget) is shed only when N_A steps miss it with no arrivals at all
 * (finishAlone): the rows present and waiting, at the recent mean batch. The arrival terms above plan
 * for open-loop Poisson traffic and are deliberately pessimistic; past saturation a closed-loop fleet's
 * arrivals are its own answered robots, and shedding on that forecast would refuse rows that would have made it.
 * A row admitted this way that still runs late leaves at its deadline (the scheduler's expiry).
 */
import { stageMs, stepPeriodMs, type StageCost } from './cost-model.js';
import { DEFAULT_STEPS_ALPHA, type Load } from './load.js';

export interface PlannedRow {
  readonly remainingSteps: number;
  /** Latest end of its last step that keeps its promise; undefined when it holds none. */
  readonly promise: number | undefined;
}

export interface PlanQuery {
  readonly now: number;
  readonly receivedAt: number;
  readonly budgetMs: number;
  readonly actionSteps: number;
  /** Upper bound for N_o (the request's vision_steps, or the model's max when it sent none). */
  readonly maxVisionSteps: number;
  /** Rows already in the denoiser stage (including rows planned before this one in the same VLM batch). */
  readonly rows: readonly PlannedRow[];
  /** Requests waiting for the VLM stage, and the rest of this row's VLM batch (it joins right after this row). */
  readonly waiting: number;
  readonly load: Load;
  readonly step: StageCost;
  readonly maxBatch: number;
  /** Fraction of the budget planned for. */
  readonly safety: number;
  readonly headroom: number;
}

export interface Plan {
  readonly visionSteps: number;
  /** Predicted time the response is ready on the main thread. */
  readonly finish: number;
  /** Whether N_o = N_A was predicted to fit the budget. */
  readonly feasible: boolean;
  /** The promise this row holds from now on (see PlannedRow). */
  readonly promise: number | undefined;
}

/**
 * End times, relative to `now`, of the next `horizon` denoiser steps when a row of `candidateSteps` steps
 * joins: ends[k] is when step k ends (ends[0] = 0).
 */
export function stepEnds(q: PlanQuery, candidateSteps: number, horizon: number, period = periodFor(q), floor = 0): Float64Array {
  const { load, rows } = q;
  const stay = arrivalStay(q, candidateSteps);
  const leaving = new Int32Array(horizon + 2);
  for (const r of rows) leaving[Math.min(Math.max(0, r.remainingSteps), horizon + 1)]++;
  const ends = new Float64Array(horizon + 1);
  let present = rows.length;
  for (let k = 1; k <= horizon; k++) {
    present -= leaving[k - 1];
    const since = Math.max(0, Math.ceil(k - 1 - stay));
    const arrived = load.arrivalsPerMs * (ends[k - 1] - ends[since]);
    const newcomers = (k <= stay ? q.waiting : 0) + arrived;
    const n = present + (k <= candidateSteps ? 1 : 0) + newcomers + q.headroom * Math.sqrt(newcomers);
    ends[k] = ends[k - 1] + period(Math.max(n, floor));
  }
  return ends;
}

/**
 * Steps an arrival during the candidate's life is planned to stay: the traffic's mean N_o once the candidate
 * has joined (the LoadTracker's moving average, moved by the candidate's N_o with its weight).
 */
export function arrivalStay(q: PlanQuery, candidateSteps: number): number {
  const mean = q.load.meanSteps;
  return Math.max(1, mean + DEFAULT_STEPS_ALPHA * (candidateSteps - mean));
}

/** Iterations of the steady-state fixed point; it converges geometrically when the load is sustainable (not converged: none). */
const STEADY_ITERATIONS = 1000;

/**
 * The rows in the stage in the steady state where requests arrive at the measured rate and each stays as
 * long as an arrival during the candidate's life is planned to (n = lambda * S * period(n), plus headroom),
 * or undefined when there is none: the executor cannot keep up with the traffic's mean N_o.
 */
export function steadyRows(q: PlanQuery, candidateSteps: number, period = periodFor(q)): number | undefined {
  const stay = arrivalStay(q, candidateSteps);
  const rate = q.load.arrivalsPerMs;
  if (rate <= 0) return 0;
  const limit = q.maxBatch * 64;
  let n = 0;
  for (let i = 0; i < STEADY_ITERATIONS; i++) {
    const mean = rate * stay * period(n);
    const next = mean + q.headroom * Math.sqrt(mean);
    if (next > limit) return undefined;
    if (Math.abs(next - n) < 1e-3) return next;
    n = next;
  }
  // Still growing: at (or within a hair of) what the executor can sustain, which is no steady state to plan on.
  return undefined;
}

/**
 * The step period at n rows, memoized per whole row count (the planner asks for the same few sizes many
 * times); a fractional expected count interpolates between its neighbours.
 */
function periodFor(q: PlanQuery): (n: number) => number {
  const memo = new Map<number, number>();
  const at = (rows: number) => {
    let ms = memo.get(rows);
    if (ms === undefined) {
      ms = stepPeriodMs(q.step, rows, q.maxBatch, q.load.vlmShare);
      memo.set(rows, ms);
    }
    return ms;
  };
  return (n) => {
    const lo = Math.max(1, Math.floor(n));
    const frac = Math.max(0, n - lo);
    return frac === 0 ? at(lo) : at(lo) + frac * (at(lo + 1) - at(lo));
  };
}

/**
 * When the response to N_A steps would be ready if nothing more arrived (see the header: strict budgets);
 * undefined while nothing is measured.
 */
export function finishAlone(q: PlanQuery): number | undefined {
  if (!q.step.warm || stageMs(q.step, 1) <= 0) return undefined;
  const ends = stepEnds({ ...q, load: { ...q.load, arrivalsPerMs: 0 }, headroom: 0 }, q.actionSteps, q.actionSteps, periodFor(q), q.load.meanBatch);
  return q.now + ends[q.actionSteps] + q.load.responsePathMs;
}

export function planVisionSteps(q: PlanQuery): Plan {
  const na = q.actionSteps;
  const path = q.load.responsePathMs;
  const budgetEnd = q.receivedAt + q.budgetMs;
  if (!q.step.warm || stageMs(q.step, 1) <= 0) {
    // Nothing measured yet (no warm-up): no basis for scaling up.
    return { visionSteps: na, finish: q.now + path, feasible: true, promise: undefined };
  }
  const protectedRows = q.rows.filter((r) => r.promise !== undefined);
  const horizon = Math.max(q.maxVisionSteps, na, ...protectedRows.map((r) => r.remainingSteps));
  const period = periodFor(q);
  // The prediction for a row of `steps` steps (the steady state of the traffic after it, if there is one, and
  // the step ends with the batch never below it), once per step count: the bisection and the answer share it.
  const predictions = new Map<number, { steady: number | undefined; ends: Float64Array }>();
  const predict = (steps: number) => {
    let p = predictions.get(steps);
    if (p === undefined) {
      const steady = steadyRows(q, steps, period);
      p = { steady, ends: stepEnds(q, steps, horizon, period, Math.max(steady ?? 0, q.load.meanBatch)) };
      predictions.set(steps, p);
    }
    return p;
  };
  // N_A is what the row runs at the least; its prediction (with the steady-state load where there is one) is
  // the bar for feasibility and for how much later other rows may end.
  const atNa = predict(na).ends;
  const finishWith = (ends: Float64Array, steps: number) => q.now + ends[steps] + path;
  const feasible = finishWith(atNa, na) <= budgetEnd;
  const fits = (steps: number): boolean => {
    const { steady, ends } = predict(steps);
    // Not sustainable at the traffic's mean N_o after this row: the queue would grow without bound.
    if (steady === undefined) return false;
    if (finishWith(ends, steps) > q.receivedAt + q.safety * q.budgetMs) return false;
    return protectedRows.every((r) => q.now + ends[r.remainingSteps] <= Math.max(r.promise!, q.now + atNa[r.remainingSteps]));
  };
  // Every check is monotone in N_o (more steps: more load for everyone, later finishes), so bisect over q.
  let lo = 0;
  let hi = Math.floor(q.maxVisionSteps / na);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid * na)) lo = mid;
    else hi = mid - 1;
  }
  const visionSteps = Math.max(1, lo) * na;
  const { ends } = predict(visionSteps);
  return { visionSteps, finish: finishWith(ends, visionSteps), feasible, promise: feasible ? budgetEnd - path : undefined };
}
