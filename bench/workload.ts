/**
 * What the simulated fleet asks for: request classes (step counts, or a latency budget with a cap on N_o),
 * assigned round-robin to robots, and how often robots send. Pure.
 */

export interface RequestClass {
  /** Stable name used as the key of per-class results, e.g. "4:16" or "4:<=64@50ms". */
  readonly label: string;
  /** N_A sent as sampling.action_steps. */
  readonly actionSteps: number;
  /** N_o sent as sampling.vision_steps (with a budget: the upper bound the server may spend). */
  readonly visionSteps: number;
  /** sampling.latency_budget_ms; 0 = none. */
  readonly budgetMs: number;
  /** sampling.strict_budget: refused rather than answered after the budget. @default false */
  readonly strictBudget?: boolean;
}

export type Arrivals = 'fixed' | 'poisson';

export interface Workload {
  readonly classes: readonly RequestClass[];
  readonly robots: number;
  /** Requests per second per robot; 0 = closed loop (next request as soon as the previous returns). */
  readonly rateHz: number;
  /** Open-loop inter-arrival law when rateHz > 0. */
  readonly arrivals: Arrivals;
  readonly rpc: 'stream' | 'predict';
  /** Also report the share of responses within this latency (e.g. a budget that the requests do not carry). */
  readonly withinMs?: number;
  /** How long a closed-loop robot waits to ask again after an error (robot.ts RETRY_DELAY_MS when absent). */
  readonly retryDelayMs?: number;
}

/** Parses "4:4,4:16,4:64" (action_steps:vision_steps per class). */
export function parseMix(spec: string): Array<{ actionSteps: number; visionSteps: number }> {
  const classes = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const m = /^(\d+):(\d+)$/.exec(s);
      if (!m) throw new Error(`--mix: "${s}" is not action_steps:vision_steps (e.g. 4:16)`);
      const actionSteps = Number(m[1]);
      const visionSteps = Number(m[2]);
      if (actionSteps < 1 || visionSteps < actionSteps || visionSteps % actionSteps !== 0) {
        throw new Error(`--mix: "${s}": vision_steps must be a positive multiple of action_steps`);
      }
      return { actionSteps, visionSteps };
    });
  if (classes.length === 0) throw new Error('--mix: at least one class is needed');
  return classes;
}

/**
 * Request classes for a mix; with a budget every class becomes "N_A, N_o <= visionCap, budget" (the server
 * chooses N_o), deduplicated by N_A, and `strictBudget` makes the budget a deadline ("... strict").
 */
export function requestClasses(mix: string, budgetMs: number, visionCap: number, strictBudget = false): RequestClass[] {
  const parsed = parseMix(mix);
  if (budgetMs <= 0) {
    return parsed.map(({ actionSteps, visionSteps }) => ({ label: `${actionSteps}:${visionSteps}`, actionSteps, visionSteps, budgetMs: 0 }));
  }
  const actionSteps = [...new Set(parsed.map((c) => c.actionSteps))];
  return actionSteps.map((na) => {
    const cap = Math.floor(visionCap / na) * na;
    if (cap < na) throw new Error(`--vision-cap ${visionCap} is below action_steps ${na}`);
    const strict = strictBudget ? { strictBudget: true, suffix: ' strict' } : { strictBudget: false, suffix: '' };
    return { label: `${na}:<=${cap}@${budgetMs}ms${strict.suffix}`, actionSteps: na, visionSteps: cap, budgetMs, strictBudget: strict.strictBudget };
  });
}

/** Class of robot r: round-robin over the classes. */
export function classOf(workload: Workload, robot: number): RequestClass {
  return workload.classes[robot % workload.classes.length];
}

/** Next inter-arrival gap in ms for an open-loop robot; `u` is uniform in [0, 1). */
export function nextGapMs(rateHz: number, arrivals: Arrivals, u: number): number {
  const periodMs = 1000 / rateHz;
  return arrivals === 'poisson' ? -Math.log(1 - u) * periodMs : periodMs;
}
