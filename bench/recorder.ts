/**
 * Collects what robots report inside the measured window and turns it into the per-mode result: per-class
 * latency quantiles, batch sizes and N_o from the responses' timing and sampling fields, budget hit rates,
 * errors by gRPC code.
 */
import type { Completion, RobotSink } from './robot.js';
import { fraction, histogram, meanOf, round, summarize, type LatencySummary } from './stats.js';
import type { RequestClass } from './workload.js';

interface ClassSamples {
  latencyMs: number[];
  serverTotalMs: number[];
  queueMs: number[];
  preprocessMs: number[];
  vlmMs: number[];
  denoiseMs: number[];
  visionSteps: number[];
  budgetMet: boolean[];
  budgetFeasible: boolean[];
  plannedTotalMs: number[];
  errors: number;
}

export interface BudgetResult {
  readonly budgetMs: number;
  /** Responses whose latency measured by the robot was within the budget. */
  readonly clientWithinBudget: number;
  /** Responses the server marked budget_met (its own clock, from arrival to the last step). */
  readonly serverBudgetMet: number;
  /** Like clientWithinBudget, counting failed requests as misses. */
  readonly clientWithinBudgetOfAll: number;
  /** Goodput: responses within the budget (the robot's clock) per second of the window. */
  readonly withinBudgetRps: number;
  /** Mean N_o the server chose. */
  readonly meanVisionSteps: number;
  /** Responses whose budget the planner judged feasible (N_A fits) when the row joined the denoiser stage. */
  readonly plannedFeasible: number;
  /**
   * The robot's latency minus the planner's planned_total_ms: how far the plan was off (network and client
   * time included). Positive = later than planned.
   */
  readonly planErrorMs: PhaseSummary;
}

export interface ClassResult {
  readonly count: number;
  readonly throughputRps: number;
  readonly latencyMs: LatencySummary;
  /** timing.total_ms of the responses: the server's view, without network and client time. */
  readonly serverTotalMs: LatencySummary;
  /**
   * The server's phases of each request (timing fields): queue_ms (arrival to VLM start: preprocessing,
   * the hop to the inference worker, waiting for a VLM batch), vlm_ms, denoise_ms (VLM end to last step).
   */
  /** preprocess is the part of queue spent decoding images and tokenizing (the rest waits for the VLM call). */
  readonly serverPhasesMs: { readonly queue: PhaseSummary; readonly preprocess: PhaseSummary; readonly vlm: PhaseSummary; readonly denoise: PhaseSummary };
  /** N_o used (sampling.vision_steps of the responses) -> count. */
  readonly visionSteps: Record<string, number>;
  readonly errors: number;
  readonly budget?: BudgetResult;
}

export interface WindowResult {
  readonly completed: number;
  readonly throughputRps: number;
  readonly latencyMs: LatencySummary;
  readonly classes: Record<string, ClassResult>;
  /** Mean of the responses' timing.vlm_batch_size. */
  readonly meanVlmBatch: number;
  /** Mean of the responses' timing.mean_denoise_batch. */
  readonly meanDenoiseBatch: number;
  /**
   * Mean timing.vlm_ms by timing.vlm_batch_size (batch sizes seen at least 5 times): the VLM call's wall time
   * inside the server, to compare with the offline table at the same batch size.
   */
  readonly vlmMsByBatch: Record<string, number>;
  readonly visionSteps: Record<string, number>;
  readonly budget?: BudgetResult;
  /** With Workload.withinMs: the share of responses within it as the robots measure them (of all sent). */
  readonly within?: { readonly ms: number; readonly share: number; readonly shareOfAll: number };
  readonly errors: Record<string, number>;
}

export class Recorder implements RobotSink {
  /** Completions since the start, measured or not (for the progress line). */
  total = 0;
  private recording = false;
  private readonly perClass: ClassSamples[];
  private readonly vlmBatch: number[] = [];
  private readonly vlmMs: number[] = [];
  private readonly denoiseBatch: number[] = [];
  private readonly errorCodes: Record<string, number> = {};

  constructor(
    private readonly classes: readonly RequestClass[],
    private readonly withinMs?: number,
  ) {
    this.perClass = classes.map(() => ({
      latencyMs: [],
      serverTotalMs: [],
      queueMs: [],
      preprocessMs: [],
      vlmMs: [],
      denoiseMs: [],
      visionSteps: [],
      budgetMet: [],
      budgetFeasible: [],
      plannedTotalMs: [],
      errors: 0,
    }));
  }

  startWindow(): void {
    this.recording = true;
  }

  endWindow(): void {
    this.recording = false;
  }

  completed(c: Completion): void {
    this.total++;
    if (!this.recording) return;
    const s = this.perClass[c.classIndex];
    const t = c.response.timing;
    s.latencyMs.push(c.latencyMs);
    if (t) {
      s.serverTotalMs.push(t.total_ms);
      s.queueMs.push(t.queue_ms);
      s.preprocessMs.push(t.preprocess_ms);
      s.vlmMs.push(t.vlm_ms);
      s.denoiseMs.push(t.denoise_ms);
      this.vlmBatch.push(t.vlm_batch_size);
      this.vlmMs.push(t.vlm_ms);
      this.denoiseBatch.push(t.mean_denoise_batch);
    }
    s.visionSteps.push(c.response.sampling?.vision_steps ?? 0);
    s.budgetMet.push(c.response.sampling?.budget_met ?? false);
    s.budgetFeasible.push(c.response.sampling?.budget_feasible ?? false);
    s.plannedTotalMs.push(c.response.sampling?.planned_total_ms ?? 0);
  }

  failed(classIndex: number, code: string): void {
    if (!this.recording) return;
    this.perClass[classIndex].errors++;
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
  }

  result(windowS: number): WindowResult {
    const classes: Record<string, ClassResult> = {};
    this.classes.forEach((cls, i) => {
      const s = this.perClass[i];
      classes[cls.label] = {
        count: s.latencyMs.length,
        throughputRps: round(s.latencyMs.length / windowS, 2),
        latencyMs: summarize(s.latencyMs),
        serverTotalMs: summarize(s.serverTotalMs),
        serverPhasesMs: { queue: phase(s.queueMs), preprocess: phase(s.preprocessMs), vlm: phase(s.vlmMs), denoise: phase(s.denoiseMs) },
        visionSteps: histogram(s.visionSteps),
        errors: s.errors,
        ...(cls.budgetMs > 0 ? { budget: budgetOf(cls.budgetMs, [s], windowS) } : {}),
      };
    });
    const all = this.perClass.flatMap((s) => s.latencyMs);
    const budgeted = this.classes.map((c, i) => [c, this.perClass[i]] as const).filter(([c]) => c.budgetMs > 0);
    const budgets = new Set(budgeted.map(([c]) => c.budgetMs));
    return {
      completed: all.length,
      throughputRps: round(all.length / windowS, 2),
      latencyMs: summarize(all),
      classes,
      meanVlmBatch: meanOf(this.vlmBatch),
      meanDenoiseBatch: meanOf(this.denoiseBatch),
      vlmMsByBatch: meanBy(this.vlmBatch, this.vlmMs, MIN_SAMPLES_PER_BATCH),
      visionSteps: histogram(this.perClass.flatMap((s) => s.visionSteps)),
      ...(budgets.size === 1
        ? {
            budget: budgetOf(
              [...budgets][0],
              budgeted.map(([, s]) => s),
              windowS,
            ),
          }
        : {}),
      ...(this.withinMs !== undefined ? { within: withinOf(this.withinMs, this.perClass) } : {}),
      errors: { ...this.errorCodes },
    };
  }
}

function withinOf(ms: number, samples: readonly ClassSamples[]): { ms: number; share: number; shareOfAll: number } {
  const latencyMs = samples.flatMap((s) => s.latencyMs);
  const all = latencyMs.length + samples.reduce((n, s) => n + s.errors, 0);
  const within = latencyMs.filter((l) => l <= ms).length;
  return { ms, share: fraction(latencyMs, (l) => l <= ms), shareOfAll: all === 0 ? NaN : round(within / all, 4) };
}

export interface PhaseSummary {
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
}

function phase(samples: readonly number[]): PhaseSummary {
  const { mean, p50, p99 } = summarize(samples);
  return { mean, p50, p99 };
}

/** Batch sizes seen fewer times than this are left out of vlmMsByBatch. */
const MIN_SAMPLES_PER_BATCH = 5;

function meanBy(keys: readonly number[], values: readonly number[], minSamples: number): Record<string, number> {
  const groups = new Map<number, number[]>();
  keys.forEach((k, i) => {
    const g = groups.get(k);
    if (g) g.push(values[i]);
    else groups.set(k, [values[i]]);
  });
  return Object.fromEntries(
    [...groups.entries()]
      .filter(([, v]) => v.length >= minSamples)
      .sort(([a], [b]) => a - b)
      .map(([k, v]) => [String(k), meanOf(v)]),
  );
}

function budgetOf(budgetMs: number, samples: readonly ClassSamples[], windowS: number): BudgetResult {
  const latencyMs = samples.flatMap((s) => s.latencyMs);
  const planned = samples.flatMap((s) => s.plannedTotalMs);
  const within = latencyMs.filter((l) => l <= budgetMs).length;
  const all = latencyMs.length + samples.reduce((n, s) => n + s.errors, 0);
  return {
    budgetMs,
    clientWithinBudget: fraction(latencyMs, (l) => l <= budgetMs),
    serverBudgetMet: fraction(
      samples.flatMap((s) => s.budgetMet),
      (m) => m,
    ),
    clientWithinBudgetOfAll: all === 0 ? NaN : round(within / all, 4),
    withinBudgetRps: round(within / windowS, 2),
    meanVisionSteps: meanOf(samples.flatMap((s) => s.visionSteps)),
    plannedFeasible: fraction(
      samples.flatMap((s) => s.budgetFeasible),
      (f) => f,
    ),
    planErrorMs: phase(latencyMs.map((l, i) => l - planned[i])),
  };
}
