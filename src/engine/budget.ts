/**
 * Latency-bounded test-time scaling: the largest N_o = q * N_A (q >= 1, N_o <= cap) whose predicted
 * completion fits the request's remaining budget under the current load, without pushing any other
 * budgeted request past its own budget. Pure: the scheduler supplies the per-step period predictions.
 */

export interface BudgetedRow {
  /** Steps the row still has to take. */
  readonly remainingSteps: number;
  /** Milliseconds left before its budget runs out. */
  readonly remainingBudgetMs: number;
}

export interface BudgetQuery {
  readonly actionSteps: number;
  /** Upper bound for N_o (the request's vision_steps, or the model's max when it sent none). */
  readonly maxVisionSteps: number;
  /** Budget left for the denoiser stage of this request. */
  readonly remainingMs: number;
  /** Rows in the denoiser stage before this one joins. */
  readonly activeRows: number;
  /** Predicted wall time between two steps of one row when `rows` rows are active. */
  readonly stepPeriodMs: (rows: number) => number;
  /** Other rows in the stage that have budgets of their own. */
  readonly others: readonly BudgetedRow[];
  /** Fraction of the budget planned for (headroom for noise and later arrivals). */
  readonly safety: number;
}

export interface BudgetChoice {
  readonly visionSteps: number;
  readonly predictedMs: number;
  /** Whether even the chosen N_o is predicted to fit (false: N_o = N_A and the budget will likely be missed). */
  readonly fits: boolean;
}

export function chooseVisionSteps(q: BudgetQuery): BudgetChoice {
  const na = q.actionSteps;
  const periodWith = q.stepPeriodMs(q.activeRows + 1);
  const extraPerStep = Math.max(0, periodWith - q.stepPeriodMs(Math.max(q.activeRows, 1)));
  const allowed = q.remainingMs * q.safety;
  const othersOk = (visionSteps: number) =>
    q.others.every((r) => {
      const before = r.remainingSteps * q.stepPeriodMs(Math.max(q.activeRows, 1));
      // The safety margin is each row's own planning headroom; another row may spend it, not more.
      const slack = r.remainingBudgetMs - before;
      // A row already predicted to miss cannot be rescued by refusing this one; do not let it veto.
      if (slack < 0) return true;
      return Math.min(visionSteps, r.remainingSteps) * extraPerStep <= slack;
    });
  for (let qq = Math.floor(q.maxVisionSteps / na); qq >= 1; qq--) {
    const visionSteps = qq * na;
    const predictedMs = visionSteps * periodWith;
    if (predictedMs <= allowed && othersOk(visionSteps)) return { visionSteps, predictedMs, fits: true };
  }
  return { visionSteps: na, predictedMs: na * periodWith, fits: na * periodWith <= q.remainingMs };
}
