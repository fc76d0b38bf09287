/**
 * Online cost model: measured latency of each stage (VLM call, denoiser step) as a function of batch size,
 * and the load figures derived from it (the period between two steps of one row, the share of executor
 * time that VLM calls take). Per batch size it keeps an exponential moving average; for sizes not yet seen
 * it interpolates with a least-squares line over recent samples (simple-statistics).
 *
 * Predictions are pure functions of a plain-data snapshot, so the main thread can predict from the snapshot
 * the inference worker sends it (admission refuses hopeless deadlines before decoding anything) and the
 * planner can evaluate many batch sizes without refitting.
 */
import { linearRegression } from 'simple-statistics';

export type Stage = 'vlm' | 'step';

export interface CostTableRow {
  readonly batch: number;
  readonly ms: number;
  readonly samples: number;
}

/** What one stage's predictions need, as plain data (structured-clone safe). */
export interface StageCost {
  /** Averages of batch sizes seen at least MIN_SAMPLES_FOR_EXACT times: [batch, ms]. */
  readonly exact: ReadonlyArray<readonly [number, number]>;
  /** Least-squares line over the recent window (undefined with fewer than two distinct sizes). */
  readonly fit: { readonly m: number; readonly b: number } | undefined;
  /** The cheapest average seen; no prediction goes below it. 0 when cold. */
  readonly floor: number;
  /** The only size seen so far and its average, when just one was seen. */
  readonly single: readonly [number, number] | undefined;
  readonly warm: boolean;
}

export interface CostSnapshot {
  readonly vlm: StageCost;
  readonly step: StageCost;
}

/** Weight of a new sample in the per-batch-size moving average. */
export const DEFAULT_EMA_ALPHA = 0.2;
/** Samples kept per stage for the linear fit. */
export const DEFAULT_FIT_WINDOW = 256;
/** Samples a batch size needs before its own average is trusted over the fit. */
const MIN_SAMPLES_FOR_EXACT = 3;
/** Window over which the share of executor time spent in VLM calls is measured. */
export const DEFAULT_LOAD_WINDOW_MS = 1000;
/** A VLM share above this is treated as this: steps always get some of the executor. */
const MAX_VLM_SHARE = 0.95;

const COLD: StageCost = Object.freeze({ exact: [], fit: undefined, floor: 0, single: undefined, warm: false });

/** Predicted milliseconds of one call at `batch` rows; 0 when the stage is cold. */
export function stageMs(s: StageCost, batch: number): number {
  if (!s.warm) return 0;
  const exact = s.exact.find(([b]) => b === batch);
  if (exact) return exact[1];
  if (s.single) {
    // One size seen: assume cost grows no faster than linearly from it.
    const [b0, ms0] = s.single;
    return batch <= b0 ? ms0 : (ms0 * batch) / b0;
  }
  // A noisy fit can dip below zero or below what any call has ever cost: never predict less than the
  // cheapest average seen.
  return Math.max(s.fit ? s.fit.m * batch + s.fit.b : 0, s.floor);
}

/**
 * Predicted wall time between two consecutive steps of one row when `rows` rows are active: a step at the
 * batch size they get, times the rounds needed when more rows are active than fit in one call, stretched by
 * the share of executor time that VLM calls take.
 */
export function stepPeriodMs(step: StageCost, rows: number, maxBatch: number, vlmShare: number): number {
  const n = Math.max(1, Math.ceil(rows));
  return (stageMs(step, Math.min(n, maxBatch)) * Math.ceil(n / maxBatch)) / (1 - Math.min(MAX_VLM_SHARE, Math.max(0, vlmShare)));
}

interface StageStats {
  readonly ema: Map<number, { ms: number; n: number }>;
  readonly window: Array<[number, number]>;
  snapshot: StageCost | undefined;
}

export class CostModel {
  private readonly stages: Record<Stage, StageStats> = {
    vlm: { ema: new Map(), window: [], snapshot: COLD },
    step: { ema: new Map(), window: [], snapshot: COLD },
  };

  constructor(
    private readonly alpha = DEFAULT_EMA_ALPHA,
    private readonly windowSize = DEFAULT_FIT_WINDOW,
  ) {}

  observe(stage: Stage, batch: number, ms: number): void {
    if (!(ms >= 0) || batch < 1) return;
    const s = this.stages[stage];
    const prev = s.ema.get(batch);
    s.ema.set(batch, prev ? { ms: prev.ms + this.alpha * (ms - prev.ms), n: prev.n + 1 } : { ms, n: 1 });
    s.window.push([batch, ms]);
    if (s.window.length > this.windowSize) s.window.shift();
    s.snapshot = undefined;
  }

  /** Whether any sample was seen for the stage (a cold model predicts 0 and callers should know). */
  isWarm(stage: Stage): boolean {
    return this.stages[stage].window.length > 0;
  }

  /** Predicted milliseconds of one call of `stage` at `batch` rows. */
  predict(stage: Stage, batch: number): number {
    return stageMs(this.stage(stage), batch);
  }

  /** Both stages as plain data; recomputed only after new observations. */
  snapshot(): CostSnapshot {
    return { vlm: this.stage('vlm'), step: this.stage('step') };
  }

  private stage(stage: Stage): StageCost {
    const s = this.stages[stage];
    s.snapshot ??= this.fit(s);
    return s.snapshot;
  }

  private fit(s: StageStats): StageCost {
    if (s.window.length === 0) return COLD;
    const exact = [...s.ema.entries()].filter(([, e]) => e.n >= MIN_SAMPLES_FOR_EXACT).map(([b, e]) => [b, e.ms] as const);
    const floor = Math.min(...[...s.ema.values()].map((e) => e.ms));
    const sizes = new Set(s.window.map(([b]) => b));
    if (sizes.size < 2) {
      // The recent window saw one size, but the averages of sizes measured before (the warm-up's, earlier
      // traffic's) still give the slope: a line through them beats extrapolating one size in proportion, which
      // over-predicts every larger batch when a step has a fixed cost.
      if (exact.length >= 2) {
        const line = linearRegression(exact.map(([batch, ms]) => [batch, ms]));
        return { exact, fit: { m: line.m, b: line.b }, floor, single: undefined, warm: true };
      }
      const [b0] = s.window[s.window.length - 1];
      return { exact, fit: undefined, floor, single: [b0, s.ema.get(b0)!.ms], warm: true };
    }
    const { m, b } = linearRegression(s.window);
    return { exact, fit: { m, b }, floor, single: undefined, warm: true };
  }

  /** Snapshot for reports and benchmarks: average ms per batch size. */
  table(stage: Stage): CostTableRow[] {
    return [...this.stages[stage].ema.entries()].sort(([a], [b]) => a - b).map(([batch, e]) => ({ batch, ms: e.ms, samples: e.n }));
  }
}

/** Share of executor time spent in VLM calls over the last `windowMs`, from the calls' end times and durations. */
export class VlmShareWindow {
  private readonly calls: Array<readonly [end: number, ms: number]> = [];

  constructor(private readonly windowMs = DEFAULT_LOAD_WINDOW_MS) {}

  record(end: number, ms: number): void {
    this.calls.push([end, ms]);
  }

  share(now: number): number {
    const since = now - this.windowMs;
    while (this.calls.length > 0 && this.calls[0][0] < since) this.calls.shift();
    return this.calls.reduce((sum, [, ms]) => sum + ms, 0) / this.windowMs;
  }
}
