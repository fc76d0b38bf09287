/**
 * What a fleet run compares: conditions, each a model version and sampling settings, every one evaluated on
 * the same held-out layouts. Experiments are named sets of conditions that answer one question each
 * (paper Tables 5 and 7, the lambda_WM ablation of Table 6c, latency budgets).
 */

export interface Condition {
  /** e.g. "v1 NA4 No16" or "v1 NA4 <=No32 budget 50ms". */
  readonly id: string;
  /** Pinned model version. */
  readonly version: number;
  /** N_A. */
  readonly actionSteps: number;
  /** N_o; with a budget, the cap the server chooses under. */
  readonly visionSteps: number;
  /** sampling.latency_budget_ms; 0 = none. */
  readonly budgetMs: number;
}

export function condition(version: number, actionSteps: number, visionSteps: number, budgetMs = 0): Condition {
  const steps = budgetMs > 0 ? `NA${actionSteps} No<=${visionSteps} budget ${budgetMs}ms` : `NA${actionSteps} No${visionSteps}`;
  return { id: `v${version} ${steps}`, version, actionSteps, visionSteps, budgetMs };
}

/** N_o values of the scaling experiment (paper Tables 5 and 7 use 4, 16, 32, 64). */
export const SCALING_VISION_STEPS = [4, 8, 16, 32] as const;
export const BUDGETS_MS = [15, 30, 60, 120, 240] as const;
/** The largest N_o a budgeted request may get. */
export const BUDGET_VISION_CAP = 32;

export const EXPERIMENTS = {
  /** DUST (v1) vs no world-model loss (v2) vs the weak checkpoint (v3), at the manifest's N_A = N_o = 4. */
  versions: () => [1, 2, 3].map((v) => condition(v, 4, 4)),
  /**
   * Test-time scaling at equal compute: N_o denoiser evaluations per chunk either way, N_A = 4 fixed
   * (asynchronous, Table 5) or N_A = N_o (synchronous, Table 7); N_o = 4 is the common point.
   */
  scaling: () => [...SCALING_VISION_STEPS.map((no) => condition(1, 4, no)), ...SCALING_VISION_STEPS.filter((no) => no !== 4).map((no) => condition(1, no, no))],
  /** The server spends each latency budget on vision steps (N_A = 4, N_o <= 32). */
  budget: () => BUDGETS_MS.map((b) => condition(1, 4, BUDGET_VISION_CAP, b)),
} as const;
export type ExperimentName = keyof typeof EXPERIMENTS;

/** "1:4:16" (version:N_A:N_o) or "1:4:32:50" (with a budget in ms), comma-separated. */
export function parseConditions(spec: string): Condition[] {
  return spec.split(',').map((part) => {
    const fields = part.trim().split(':').map(Number);
    if ((fields.length !== 3 && fields.length !== 4) || fields.some((f) => !Number.isInteger(f) || f < 0)) {
      throw new Error(`condition ${JSON.stringify(part)}: expected version:N_A:N_o or version:N_A:N_o:budget_ms`);
    }
    const [version, na, no, budget = 0] = fields;
    if (version < 1 || na < 1 || no < na || no % na !== 0) {
      throw new Error(`condition ${JSON.stringify(part)}: version >= 1, N_A >= 1, and N_o a multiple of N_A`);
    }
    return condition(version, na, no, budget);
  });
}
