/**
 * Reports of executor calls (one VLM call or one denoiser step over a batch), for telemetry: batch-size
 * histograms and batch spans linked to every request they served. The scheduler reports inside the
 * inference worker; the reports cross to the main thread with the next result message, so the per-step
 * loop never posts to the event loop on their account.
 */
import type { BatchReport, BatchStage, CallTiming } from '../telemetry/index.js';
import type { JobInput } from './job.js';

/**
 * How much the worker records: nothing, call sizes and times (metrics), or also which jobs were in each
 * call (trace links).
 */
export type BatchRecording = 'off' | 'sizes' | 'members';

/** An executor call as the scheduler sees it, on the scheduler's clock. */
export interface BatchEvent {
  readonly stage: BatchStage;
  readonly start: number;
  readonly end: number;
  /** The jobs in the call, each with its step index i (0 for the VLM). */
  readonly rows: ReadonlyArray<{ readonly job: JobInput; readonly step: number }>;
  /** Where the call's time went, as the executor measured it; absent when the call failed. */
  readonly timing?: CallTiming;
  /** Why the call failed. */
  readonly error?: string;
}

export type BatchObserver = (event: BatchEvent) => void;

/** A BatchEvent across the thread boundary: epoch times, jobs as the proxy's message ids. */
export interface WireBatch {
  readonly stage: BatchStage;
  readonly startEpoch: number;
  readonly endEpoch: number;
  readonly rows: number;
  /** [message id, step] per row; only when recording members. */
  readonly members?: ReadonlyArray<readonly [number, number]>;
  readonly timing?: CallTiming;
  readonly error?: string;
}

export type BatchListener = (reports: readonly BatchReport[]) => void;

export type { BatchReport, BatchStage };
