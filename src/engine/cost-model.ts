/**
 * Online cost model: measured latency of each stage (VLM call, denoiser step) as a function of batch size.
 * Per batch size it keeps an exponential moving average; for sizes not yet seen it interpolates with a
 * least-squares line over recent samples (simple-statistics). Pure data structure: the scheduler feeds it
 * the executor's measured times and asks it for predictions when it picks N_o under a latency budget.
 */
import { linearRegression } from 'simple-statistics';

export type Stage = 'vlm' | 'step';

export interface CostTableRow {
  readonly batch: number;
  readonly ms: number;
  readonly samples: number;
}

/** Weight of a new sample in the per-batch-size moving average. */
export const DEFAULT_EMA_ALPHA = 0.2;
/** Samples kept per stage for the linear fit. */
export const DEFAULT_FIT_WINDOW = 256;
/** Samples a batch size needs before its own average is trusted over the fit. */
const MIN_SAMPLES_FOR_EXACT = 3;

interface StageStats {
  readonly ema: Map<number, { ms: number; n: number }>;
  readonly window: Array<[number, number]>;
}

export class CostModel {
  private readonly stages: Record<Stage, StageStats> = {
    vlm: { ema: new Map(), window: [] },
    step: { ema: new Map(), window: [] },
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
  }

  /** Whether any sample was seen for the stage (a cold model predicts 0 and callers should know). */
  isWarm(stage: Stage): boolean {
    return this.stages[stage].window.length > 0;
  }

  /** Predicted milliseconds of one call of `stage` at `batch` rows. */
  predict(stage: Stage, batch: number): number {
    const s = this.stages[stage];
    const exact = s.ema.get(batch);
    if (exact && exact.n >= MIN_SAMPLES_FOR_EXACT) return exact.ms;
    if (s.window.length === 0) return 0;
    const sizes = new Set(s.window.map(([b]) => b));
    if (sizes.size < 2) {
      // One size seen: assume cost grows no faster than linearly from it.
      const [b0] = s.window[s.window.length - 1];
      const ms0 = s.ema.get(b0)!.ms;
      return batch <= b0 ? ms0 : (ms0 * batch) / b0;
    }
    const { m, b } = linearRegression(s.window);
    const fitted = m * batch + b;
    // A noisy fit can dip below zero or below what any call has ever cost: never predict less than the
    // cheapest average seen.
    const floor = Math.min(...[...s.ema.values()].map((e) => e.ms));
    return Math.max(fitted, floor, exact?.ms ?? 0);
  }

  /** Snapshot for reports and benchmarks: average ms per batch size. */
  table(stage: Stage): CostTableRow[] {
    return [...this.stages[stage].ema.entries()]
      .sort(([a], [b]) => a - b)
      .map(([batch, e]) => ({ batch, ms: e.ms, samples: e.n }));
  }
}
