/**
 * The load a model version is under, measured where its work happens (the inference worker): how fast
 * requests arrive, how many denoiser steps they stay for, how many rows a denoiser call has, how much of the
 * executor VLM calls take, and how long a finished row takes to become a response on the main thread. The budget planner plans with it; the
 * main thread's admission gets a copy. Plain data structures over times handed in (fake clocks in tests).
 */
import { VlmShareWindow } from './cost-model.js';

/** Time constant of the arrival-rate estimate: long enough to smooth Poisson noise, short enough to follow a ramp. */
export const DEFAULT_RATE_TAU_MS = 1000;
/** A lull this many time constants long ends a stream: the next arrival starts a new one (RateMeter). */
const RESTART_TAUS = 5;
/** Weight of one join in the moving average of denoiser steps per request. */
export const DEFAULT_STEPS_ALPHA = 0.05;
/** Weight of one response in the moving average of the response path. */
export const DEFAULT_RESPONSE_PATH_ALPHA = 0.05;
/** Weight of one denoiser call in the moving average of its batch size. */
export const DEFAULT_BATCH_ALPHA = 0.05;

/**
 * Events per millisecond as an exponentially decaying average (time constant `tauMs`): each event adds
 * 1/tau, and the sum decays as e^(-dt/tau). Within the first tau after the first event the sum has not
 * built up yet (it starts at 0 and would read a fresh stream at a fraction of its rate, so the budget
 * planner scaled every request up during the first second of traffic); it is divided by the weight it has
 * had so far, 1 - e^(-t/tau), which reads n/t for a young stream and unbiased for a steady one at any age.
 * After a lull of `RESTART_TAUS` tau (nothing left of the sum) the next event starts a young stream again.
 */
export class RateMeter {
  private sum = 0;
  private at: number | undefined;
  private first: number | undefined;

  constructor(private readonly tauMs = DEFAULT_RATE_TAU_MS) {}

  record(now: number, count = 1): void {
    if (this.at !== undefined && now - this.at > RESTART_TAUS * this.tauMs) {
      this.sum = 0;
      this.first = undefined;
    }
    this.sum = this.decayed(now) + count / this.tauMs;
    this.at = now;
    this.first ??= now;
  }

  perMs(now: number): number {
    if (this.first === undefined) return 0;
    // At least one tau/16 of age, so the first events do not read as an infinite rate.
    const age = Math.max(this.tauMs / 16, now - this.first);
    return this.decayed(now) / (1 - Math.exp(-age / this.tauMs));
  }

  private decayed(now: number): number {
    if (this.at === undefined) return 0;
    return this.sum * Math.exp(-Math.max(0, now - this.at) / this.tauMs);
  }
}

/** An exponential moving average that starts at its first sample. */
export class Ema {
  private value: number | undefined;

  constructor(private readonly alpha: number) {}

  record(x: number): void {
    this.value = this.value === undefined ? x : this.value + this.alpha * (x - this.value);
  }

  get(fallback = 0): number {
    return this.value ?? fallback;
  }
}

/** What the planner needs to know about the rest of the traffic. */
export interface Load {
  /** Requests arriving per millisecond. */
  readonly arrivalsPerMs: number;
  /** Denoiser steps a request stays for, on average (N_o of recent joins). */
  readonly meanSteps: number;
  /** Share of executor time spent in VLM calls. */
  readonly vlmShare: number;
  /** Rows per denoiser call, recently. */
  readonly meanBatch: number;
  /** From a row's last step to its response being ready on the main thread. */
  readonly responsePathMs: number;
}

export class LoadTracker {
  private readonly arrivals = new RateMeter();
  private readonly steps = new Ema(DEFAULT_STEPS_ALPHA);
  private readonly vlm = new VlmShareWindow();
  private readonly responsePath = new Ema(DEFAULT_RESPONSE_PATH_ALPHA);
  private readonly batch = new Ema(DEFAULT_BATCH_ALPHA);

  arrived(now: number): void {
    this.arrivals.record(now);
  }

  joined(visionSteps: number): void {
    this.steps.record(visionSteps);
  }

  vlmCall(end: number, ms: number): void {
    this.vlm.record(end, ms);
  }

  stepCall(batch: number): void {
    this.batch.record(batch);
  }

  /** The main thread measures this (it is where the response is built) and reports it with each job. */
  responded(ms: number): void {
    if (ms >= 0 && Number.isFinite(ms)) this.responsePath.record(ms);
  }

  at(now: number, fallbackSteps: number): Load {
    return {
      arrivalsPerMs: this.arrivals.perMs(now),
      meanSteps: this.steps.get(fallbackSteps),
      vlmShare: this.vlm.share(now),
      meanBatch: this.batch.get(0),
      responsePathMs: this.responsePath.get(0),
    };
  }
}
